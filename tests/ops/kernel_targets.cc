// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The CPU kernels of custom_ops/cc/kernels/adder_conv2d_cpu.h, without
// TensorFlow, on a sweep of geometries, checked against float64 sums of the
// AdderNet formulas (tests/ops/kernel_reference.h). tests/ops/test_kernel_targets.py compiles it
// for targets the op library is not built for here (SSE2's portable vectors,
// AVX2, AVX-512), so every tile and every pixel-block size is checked on
// every target, not only the machine's own.
//
//   kernel_targets GEOMETRIES SEED
//
// Exits 1 with one line naming the kernel, type and geometry on a mismatch;
// else prints "checked=N target=...".

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "tests/ops/kernel_reference.h"

int main(int argc, char** argv) {
  if (argc != 3 || std::atoi(argv[1]) < 1) {
    std::fprintf(stderr, "usage: kernel_targets GEOMETRIES SEED (GEOMETRIES >= 1)\n");
    return 2;
  }
  const int count = std::atoi(argv[1]);
  std::mt19937 rng(static_cast<unsigned>(std::atoi(argv[2])));
  const int channels[] = {1, 2, 3, 7, 8, 9, 16, 17, 33};
  const int outs[] = {1, 3, 8, 15, 16, 17, 31, 32, 33};
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int i = 0; i < count; ++i) {
    addernet::AdderConvGeometry g{};
    g.batch = pick(1, 2);
    g.kernel_height = pick(1, 5);
    g.kernel_width = pick(1, 5);
    g.stride_h = pick(1, 3);
    g.stride_w = pick(1, 3);
    g.pad_top = pick(0, g.kernel_height - 1);
    g.pad_left = pick(0, g.kernel_width - 1);
    const int64_t pad_bottom = pick(0, g.kernel_height - 1);
    const int64_t pad_right = pick(0, g.kernel_width - 1);
    // Widths from 1 to 40 output columns: every pixel-block size and its tails.
    g.in_height = std::max<int64_t>(1, g.kernel_height - g.pad_top - pad_bottom) + pick(0, 6);
    g.in_width = std::max<int64_t>(1, g.kernel_width - g.pad_left - pad_right) + pick(0, 40);
    g.in_channels = channels[pick(0, 8)];
    g.out_channels = outs[pick(0, 8)];
    g.out_height = (g.in_height + g.pad_top + pad_bottom - g.kernel_height) / g.stride_h + 1;
    g.out_width = (g.in_width + g.pad_left + pad_right - g.kernel_width) / g.stride_w + 1;
    if (!addernet::reference::CheckGeometry<float>("kernel_targets", g, rng) ||
        !addernet::reference::CheckGeometry<double>("kernel_targets", g, rng)) {
      return 1;
    }
  }
  std::printf("checked=%d target=%s\n", count, addernet::cpu::KernelTarget());
  return 0;
}
