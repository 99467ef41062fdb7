// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// An int8 adder layer against the float one (issue 16): the LiteRT op's int8
// kernel (custom_ops/cc/kernels/adder_conv2d_int8.h: psadbw on bytes) and the
// float forward kernels the ops use (adder_conv2d_cpu.h), one thread, one
// 3x3 SAME stride-1 layer.
//
//   int8_sad H W C O BATCH REPEATS   (built and run by `python -m benchmarks.int8_sad`)
//
// Each int8 output is checked against a scalar loop (int64 sums, requantized
// in double; a value within 1e-3 of a rounding tie may land either side)
// before timing. The int8 time includes copying the input into the padded
// uint8 buffer, as the op does on every call; neither side packs its filter
// (the op caches packed filters). Prints one line of tab-separated
// `key=value` pairs.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"
#include "custom_ops/cc/kernels/adder_conv2d_int8.h"

namespace {

template <typename Fn>
double BestSeconds(int repeats, const Fn& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: int8_sad H W C O BATCH REPEATS\n");
    return 2;
  }
  const int64_t h = std::atoi(argv[1]), w = std::atoi(argv[2]), c = std::atoi(argv[3]);
  const int64_t o = std::atoi(argv[4]), n = std::atoi(argv[5]);
  const int repeats = std::atoi(argv[6]);
  if (n < 1 || h < 1 || w < 1 || c < 1 || o < 1 || repeats < 1) {
    std::fprintf(stderr, "int8_sad: sizes and repeats must be >= 1\n");
    return 2;
  }
  const addernet::AdderConvGeometry g{n, h, w, c, 3, 3, o, h, w, 1, 1, 1, 1};
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> byte(-128, 127);
  std::vector<int8_t> x(static_cast<size_t>(n * h * w * c)), filter(static_cast<size_t>(9 * c * o));
  for (auto& v : x) v = static_cast<int8_t>(byte(rng));
  for (auto& v : filter) v = static_cast<int8_t>(byte(rng));
  const int zero_point = -3;
  // Outputs spread around the middle of int8: |a - b| of uniform bytes has
  // mean 85.3 and standard deviation 60.2.
  const double pairs = 9.0 * c;
  const float multiplier = static_cast<float>(20.0 / (60.2 * std::sqrt(pairs)));
  std::vector<float> bias(static_cast<size_t>(o));
  for (int64_t k = 0; k < o; ++k) bias[k] = multiplier * 85.3f * static_cast<float>(pairs) + k % 7;
  std::vector<uint8_t> packed(addernet::int8::PackedFilterBytes(g));
  addernet::int8::PackFilter(g, filter.data(), packed.data());
  std::vector<int8_t> y(static_cast<size_t>(n * h * w * o));
  const std::vector<float> multipliers(static_cast<size_t>(o), multiplier);
  const addernet::int8::Requantization rq{multipliers.data(), bias.data()};
  auto inline_for = [](int64_t units, int64_t, const auto& fn) { fn(int64_t{0}, units); };
  auto int8_layer = [&] {
    addernet::int8::AdderConv2DForwardInt8(g, x.data(), zero_point, packed.data(), rq, y.data(),
                                           inline_for);
  };
  int8_layer();
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oh = 0; oh < h; ++oh)
      for (int64_t ow = 0; ow < w; ++ow)
        for (int64_t k = 0; k < o; ++k) {
          int64_t sum = 0;
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j)
              for (int64_t ch = 0; ch < c; ++ch) {
                const int64_t ih = oh + i - 1, iw = ow + j - 1;
                const int xv = (ih < 0 || ih >= h || iw < 0 || iw >= w)
                                   ? zero_point : x[((b * h + ih) * w + iw) * c + ch];
                sum += std::abs(xv - filter[((i * 3 + j) * c + ch) * o + k]);
              }
          const double value = static_cast<double>(bias[k]) - static_cast<double>(multiplier) * sum;
          const double want = std::min(127.0, std::max(-128.0, std::nearbyint(value)));
          const int got = y[((b * h + oh) * w + ow) * o + k];
          const bool tie = std::abs(std::abs(value - std::floor(value)) - 0.5) < 1e-3;
          if (got != want && !(tie && std::abs(got - want) <= 1)) {
            std::fprintf(stderr, "mismatch at n=%lld oh=%lld ow=%lld o=%lld: %d vs %.0f\n",
                         static_cast<long long>(b), static_cast<long long>(oh),
                         static_cast<long long>(ow), static_cast<long long>(k), got, want);
            return 1;
          }
        }
  // The float kernels on the same layer.
  std::vector<float> xf(x.size()), ff(filter.size()), yf(y.size());
  for (auto& v : xf) v = byte(rng) / 255.0f;
  for (auto& v : ff) v = byte(rng) / 255.0f;
  std::vector<float> packed_f(addernet::cpu::ForwardWorkspaceSize<float>(g));
  const addernet::cpu::PackedForwardFilter<float> pf(g, ff.data(), packed_f.data());
  const double t_float = BestSeconds(repeats, [&] {
    addernet::cpu::AdderConv2DForwardPacked<float>(g, xf.data(), pf, yf.data(), inline_for);
  });
  const double t_max = BestSeconds(repeats, [&] {
    addernet::cpu::AdderConv2DForwardPacked<float, addernet::cpu::Formulation::kMaxIdentity>(
        g, xf.data(), pf, yf.data(), inline_for);
  });
  const double t_int8 = BestSeconds(repeats, int8_layer);
  std::printf("isa=%s\tfloat_kernel=%s\tpairs=%.0f\tfloat_s=%.9f\tmaxid_s=%.9f\tint8_s=%.9f\t"
              "float_over_int8=%.3f\tmaxid_over_int8=%.3f\tchecked=1\n",
              addernet::int8::kTarget, addernet::cpu::KernelTarget(),
              static_cast<double>(n * h * w * o) * pairs, t_float, t_max, t_int8,
              t_float / t_int8, t_max / t_int8);
  return 0;
}
