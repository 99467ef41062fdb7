// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The float CPU kernels of custom_ops/cc/kernels/adder_conv2d_cpu.h on one
// ResNet-20 layer, one thread, no TensorFlow: benchmarks/kernel_isa.py builds
// this file for two targets (x86-64-v3 and the machine's own) and compares
// their speed per (x, f) pair.
//
//   kernel_isa H C O STRIDE BATCH REPEATS ROUNDS
//
// Before timing, each kernel's output on a small batch is checked against a
// float64 loop written here (relative error <= 1e-4 of the sum of |terms|);
// a mismatch prints one line to stderr and exits 1. Then prints one line of
// key=value fields: the kernel target, the pairs per call and, per kernel
// (fwd, maxid, dx, df), the best seconds per call over ROUNDS rounds of
// REPEATS calls.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"

namespace {

using addernet::AdderConvGeometry;
namespace cpu = addernet::cpu;

// One thread. Through std::function, as the TF op's thread pool takes it, so
// the kernels' loops compile as in the op (a lambda of their own, not folded
// into the caller; tests/ops/test_cpu_tiles_in_registers.py checks them).
__attribute__((noinline)) void InlineFor(int64_t units, int64_t,
                                         const std::function<void(int64_t, int64_t)>& fn) {
  fn(0, units);
}
const auto kInline = [](int64_t units, int64_t cost,
                        const std::function<void(int64_t, int64_t)>& fn) {
  InlineFor(units, cost, fn);
};

AdderConvGeometry Geometry(int64_t n, int64_t h, int64_t c, int64_t o, int64_t stride) {
  const int64_t out = (h + 2 - 3) / stride + 1;
  return AdderConvGeometry{n, h, h, c, 3, 3, o, out, out, stride, stride, 1, 1};
}

struct Layer {
  explicit Layer(const AdderConvGeometry& geometry)
      : g(geometry),
        x(g.batch * g.in_height * g.in_width * g.in_channels),
        f(9 * g.in_channels * g.out_channels),
        dy(g.batch * g.out_height * g.out_width * g.out_channels),
        y(dy.size()),
        dx(x.size()),
        df(f.size()),
        forward_ws(cpu::ForwardWorkspaceSize<float>(g)),
        input_ws(cpu::BackpropInputWorkspaceSize<float>(g)),
        filter_ws(cpu::BackpropFilterWorkspaceSize<float>(g, 1)) {
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    for (auto* v : {&x, &f, &dy}) {
      for (float& e : *v) e = normal(rng);
    }
  }
  void Forward() { cpu::AdderConv2DForward<float>(g, x.data(), f.data(), forward_ws.data(), y.data(), kInline); }
  void MaxIdentity() {
    cpu::AdderConv2DForward<float, cpu::Formulation::kMaxIdentity>(
        g, x.data(), f.data(), forward_ws.data(), y.data(), kInline);
  }
  void Input() {
    cpu::AdderConv2DBackpropInput<float>(g, x.data(), f.data(), dy.data(), input_ws.data(),
                                         dx.data(), kInline);
  }
  void Filter() {
    cpu::AdderConv2DBackpropFilter<float>(g, x.data(), f.data(), dy.data(), 1, filter_ws.data(),
                                          df.data(), kInline);
  }

  const AdderConvGeometry g;
  std::vector<float> x, f, dy, y, dx, df, forward_ws, input_ws, filter_ws;
};

// x[n, ih, iw, c] or 0 in the padding.
double At(const Layer& l, int64_t n, int64_t ih, int64_t iw, int64_t c) {
  const AdderConvGeometry& g = l.g;
  if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) return 0.0;
  return l.x[((n * g.in_height + ih) * g.in_width + iw) * g.in_channels + c];
}

// Checks y, dx and df of `l` against float64 sums of the AdderNet formulas.
bool Check(Layer& l) {
  const AdderConvGeometry& g = l.g;
  l.Forward();
  std::vector<double> want_dx(l.x.size(), 0.0), scale_dx(l.x.size(), 0.0);
  std::vector<double> want_df(l.f.size(), 0.0), scale_df(l.f.size(), 0.0);
  std::vector<double> want_y(l.y.size()), scale_max(l.y.size());
  const char* bad = nullptr;
  for (int64_t n = 0; n < g.batch && bad == nullptr; ++n)
    for (int64_t oh = 0; oh < g.out_height; ++oh)
      for (int64_t ow = 0; ow < g.out_width; ++ow)
        for (int64_t o = 0; o < g.out_channels; ++o) {
          double sum = 0.0, max_scale = 0.0;
          const int64_t out = ((n * g.out_height + oh) * g.out_width + ow) * g.out_channels + o;
          const double d = l.dy[out];
          for (int64_t i = 0; i < 3; ++i)
            for (int64_t j = 0; j < 3; ++j)
              for (int64_t c = 0; c < g.in_channels; ++c) {
                const int64_t ih = oh * g.stride_h + i - 1, iw = ow * g.stride_w + j - 1;
                const double xv = At(l, n, ih, iw, c);
                const int64_t fi = ((i * 3 + j) * g.in_channels + c) * g.out_channels + o;
                const double fv = l.f[fi];
                sum += std::abs(xv - fv);
                max_scale += 2 * std::abs(std::max(xv, fv)) + std::abs(xv) + std::abs(fv);
                want_df[fi] += (xv - fv) * d;
                scale_df[fi] += std::abs((xv - fv) * d);
                if (ih >= 0 && ih < g.in_height && iw >= 0 && iw < g.in_width) {
                  const int64_t xi = ((n * g.in_height + ih) * g.in_width + iw) * g.in_channels + c;
                  want_dx[xi] += std::min(1.0, std::max(-1.0, fv - xv)) * d;
                  scale_dx[xi] += std::abs(d);
                }
              }
          want_y[out] = -sum;
          scale_max[out] = max_scale;
          if (std::abs(l.y[out] + sum) > 1e-4 * sum + 1e-6) bad = "fwd";
        }
  l.MaxIdentity();
  // The max identity's bound grows with the operands, gamma_(k+3) times
  // sum(2|max| + |x| + |f|) for k = 9 C terms (docs/DESIGN.md); twice it here.
  const double k3 = 9.0 * g.in_channels + 3, u = std::ldexp(1.0, -24);
  for (size_t e = 0; e < l.y.size() && bad == nullptr; ++e) {
    if (std::abs(l.y[e] - want_y[e]) > 2 * k3 * u / (1 - k3 * u) * scale_max[e]) bad = "maxid";
  }
  l.Input();
  for (size_t e = 0; e < l.dx.size() && bad == nullptr; ++e) {
    if (std::abs(l.dx[e] - want_dx[e]) > 1e-4 * scale_dx[e] + 1e-6) bad = "dx";
  }
  l.Filter();
  for (size_t e = 0; e < l.df.size() && bad == nullptr; ++e) {
    if (std::abs(l.df[e] - want_df[e]) > 1e-4 * scale_df[e] + 1e-6) bad = "df";
  }
  if (bad != nullptr) std::fprintf(stderr, "kernel_isa: %s disagrees with the float64 loop\n", bad);
  return bad == nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr, "usage: kernel_isa H C O STRIDE BATCH REPEATS ROUNDS\n");
    return 2;
  }
  const int64_t h = std::atoi(argv[1]), c = std::atoi(argv[2]), o = std::atoi(argv[3]);
  const int64_t stride = std::atoi(argv[4]), n = std::atoi(argv[5]);
  const int repeats = std::atoi(argv[6]), rounds = std::atoi(argv[7]);
  if (h < 1 || c < 1 || o < 1 || stride < 1 || n < 1 || repeats < 1 || rounds < 1) {
    std::fprintf(stderr, "kernel_isa: every argument must be >= 1\n");
    return 2;
  }
  Layer small(Geometry(2, h, c, o, stride));
  if (!Check(small)) return 1;
  Layer layer(Geometry(n, h, c, o, stride));
  void (Layer::*kernels[])() = {&Layer::Forward, &Layer::MaxIdentity, &Layer::Input,
                                &Layer::Filter};
  const char* names[] = {"fwd", "maxid", "dx", "df"};
  double best[4] = {1e30, 1e30, 1e30, 1e30};
  for (auto kernel : kernels) (layer.*kernel)();
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < 4; ++k) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < repeats; ++i) (layer.*kernels[k])();
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
      best[k] = std::min(best[k], s);
    }
  }
  const AdderConvGeometry& g = layer.g;
  std::printf("target=%s\tpairs=%.0f", cpu::KernelTarget(),
              static_cast<double>(g.batch * g.out_height * g.out_width * g.out_channels) * 9 * c);
  for (int k = 0; k < 4; ++k) std::printf("\t%s_s=%.9f", names[k], best[k]);
  std::printf("\n");
  return 0;
}
