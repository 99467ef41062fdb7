// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// A check of the CPU kernels of custom_ops/cc/kernels/adder_conv2d_cpu.h
// against float64 sums of the AdderNet formulas written here, for any
// geometry: tests/ops/kernel_targets.cc (every target, a sweep of geometries)
// and benchmarks/kernel_isa.cc (before it times a build) call CheckGeometry.

#ifndef ADDERNET_TESTS_OPS_KERNEL_REFERENCE_H_
#define ADDERNET_TESTS_OPS_KERNEL_REFERENCE_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"

namespace addernet {
namespace reference {

namespace cpu = addernet::cpu;

// Runs fn over [0, units) in two chunks, as a two-thread pool would split it.
inline const auto kTwoChunks = [](int64_t units, int64_t, const auto& fn) {
  const int64_t half = units / 2;
  if (half > 0) fn(int64_t{0}, half);
  fn(half, units);
};

template <typename T>
struct Unit;
template <>
struct Unit<float> {
  static constexpr double kRoundoff = 5.9604644775390625e-08;  // 2^-24
  static constexpr const char* kName = "float";
};
template <>
struct Unit<double> {
  static constexpr double kRoundoff = 1.1102230246251565e-16;  // 2^-53
  static constexpr const char* kName = "double";
};

inline std::string Describe(const AdderConvGeometry& g) {
  char text[200];
  std::snprintf(text, sizeof(text),
                "N%lld H%lld W%lld C%lld K%lldx%lld O%lld stride %lldx%lld pad %lld,%lld "
                "out %lldx%lld",
                (long long)g.batch, (long long)g.in_height, (long long)g.in_width,
                (long long)g.in_channels, (long long)g.kernel_height,
                (long long)g.kernel_width, (long long)g.out_channels, (long long)g.stride_h,
                (long long)g.stride_w, (long long)g.pad_top, (long long)g.pad_left,
                (long long)g.out_height, (long long)g.out_width);
  return text;
}

// Checks forward (both formulations), dX and dF of one geometry in type T on
// data drawn from `rng`; on a mismatch prints one line, "`program`: <kernel>
// (<type>) disagrees with the float64 sums: <geometry>", and returns false.
template <typename T>
bool CheckGeometry(const char* program, const AdderConvGeometry& g, std::mt19937& rng) {
  std::normal_distribution<double> normal;
  const int64_t kh = g.kernel_height, kw = g.kernel_width, c = g.in_channels,
                o = g.out_channels;
  std::vector<T> x(g.batch * g.in_height * g.in_width * c), f(kh * kw * c * o),
      dy(g.batch * g.out_height * g.out_width * o);
  for (auto* v : {&x, &f, &dy}) {
    for (T& e : *v) e = static_cast<T>(normal(rng));
  }
  std::vector<T> y(dy.size()), y_max(dy.size()), dx(x.size()), df(f.size());
  std::vector<T> forward_ws(cpu::ForwardWorkspaceSize<T>(g));
  std::vector<T> input_ws(cpu::BackpropInputWorkspaceSize<T>(g));
  const int64_t shards = cpu::BackpropFilterShards(g, 2);
  std::vector<T> filter_ws(cpu::BackpropFilterWorkspaceSize<T>(g, shards));
  cpu::AdderConv2DForward<T>(g, x.data(), f.data(), forward_ws.data(), y.data(), kTwoChunks);
  cpu::AdderConv2DForward<T, cpu::Formulation::kMaxIdentity>(g, x.data(), f.data(),
                                                             forward_ws.data(), y_max.data(),
                                                             kTwoChunks);
  cpu::AdderConv2DBackpropInput<T>(g, x.data(), f.data(), dy.data(), input_ws.data(), dx.data(),
                                   kTwoChunks);
  cpu::AdderConv2DBackpropFilter<T>(g, x.data(), f.data(), dy.data(), shards, filter_ws.data(),
                                    df.data(), kTwoChunks);

  std::vector<double> want_dx(x.size(), 0.0), scale_dx(x.size(), 0.0);
  std::vector<double> want_df(f.size(), 0.0), scale_df(f.size(), 0.0), dy_sum(o, 0.0);
  const double terms = static_cast<double>(kh * kw * c);
  const double u = Unit<T>::kRoundoff;
  const char* bad = nullptr;
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oh = 0; oh < g.out_height; ++oh)
      for (int64_t ow = 0; ow < g.out_width; ++ow)
        for (int64_t k = 0; k < o; ++k) {
          const int64_t out = ((n * g.out_height + oh) * g.out_width + ow) * o + k;
          const double d = dy[out];
          double sum = 0.0, max_scale = 0.0;
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j)
              for (int64_t ch = 0; ch < c; ++ch) {
                const int64_t ih = oh * g.stride_h + i - g.pad_top;
                const int64_t iw = ow * g.stride_w + j - g.pad_left;
                const bool inside = ih >= 0 && ih < g.in_height && iw >= 0 && iw < g.in_width;
                const int64_t xi = ((n * g.in_height + ih) * g.in_width + iw) * c + ch;
                const double xv = inside ? static_cast<double>(x[xi]) : 0.0;
                const int64_t fi = ((i * kw + j) * c + ch) * o + k;
                const double fv = f[fi];
                sum += std::abs(xv - fv);
                max_scale += 2 * std::abs(std::max(xv, fv)) + std::abs(xv) + std::abs(fv);
                want_df[fi] += (xv - fv) * d;
                scale_df[fi] += std::abs(xv * d);
                if (inside) {
                  want_dx[xi] += std::min(1.0, std::max(-1.0, fv - xv)) * d;
                  scale_dx[xi] += std::abs(d);
                }
              }
          dy_sum[k] += std::abs(d);
          // Rounding bounds, gamma_m times the sum of |terms|, twice over.
          const double g1 = 2 * (terms + 2) * u, g3 = 2 * (terms + 4) * u;
          if (bad == nullptr && !(std::abs(y[out] + sum) <= g1 * sum + 1e-30)) bad = "forward";
          if (bad == nullptr && !(std::abs(y_max[out] + sum) <= g3 * max_scale))
            bad = "forward (max identity)";
        }
  // dX sums KH*KW*O terms per element, dF N*OH*OW terms per element plus
  // the correction F * sum(dY).
  const double gx = 2 * (kh * kw * o + 2) * u;
  const double gf = 2 * (g.batch * g.out_height * g.out_width + 4) * u;
  for (size_t e = 0; e < dx.size() && bad == nullptr; ++e) {
    if (!(std::abs(dx[e] - want_dx[e]) <= gx * scale_dx[e] + 1e-300)) bad = "dX";
  }
  for (size_t e = 0; e < df.size() && bad == nullptr; ++e) {
    const double scale = scale_df[e] + std::abs(static_cast<double>(f[e])) * dy_sum[e % o];
    if (!(std::abs(df[e] - want_df[e]) <= gf * scale + 1e-300)) bad = "dF";
  }
  if (bad != nullptr) {
    std::fprintf(stderr, "%s: %s (%s) disagrees with the float64 sums: %s\n", program, bad,
                 Unit<T>::kName, Describe(g).c_str());
  }
  return bad == nullptr;
}

}  // namespace reference
}  // namespace addernet

#endif  // ADDERNET_TESTS_OPS_KERNEL_REFERENCE_H_
