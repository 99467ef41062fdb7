// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The float CPU kernels of custom_ops/cc/kernels/adder_conv2d_cpu.h on one
// ResNet-20 layer, one thread, no TensorFlow: benchmarks/kernel_isa.py builds
// this file for two targets (x86-64-v3 and the machine's own) and compares
// their speed per (x, f) pair.
//
//   kernel_isa H C O STRIDE BATCH REPEATS ROUNDS
//
// Before timing, the kernels run on the same layer at batch 2 and are checked
// against float64 sums (tests/ops/kernel_reference.h, within twice the
// rounding bound); a mismatch prints one line to stderr and exits 1. Then prints one line of
// key=value fields: the kernel target, the pairs per call and, per kernel
// (fwd, maxid, dx, df), the best seconds per call over ROUNDS rounds of
// REPEATS calls.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"
#include "tests/ops/kernel_reference.h"

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
  void Forward() {
    cpu::AdderConv2DForward<float>(g, x.data(), f.data(), forward_ws.data(), y.data(), kInline);
  }
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
  std::mt19937 check_rng(1);
  if (!addernet::reference::CheckGeometry<float>("kernel_isa", Geometry(2, h, c, o, stride),
                                                 check_rng)) {
    return 1;
  }
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
