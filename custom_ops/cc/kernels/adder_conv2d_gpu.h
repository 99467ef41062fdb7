// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// CUDA launchers of the adder convolution: raw device pointers in, work
// queued on `stream`, nothing synchronized. Plain C++ declarations, so the TF
// GPU OpKernel (g++, TF's headers) and the kernels (nvcc, CUDA 13) never share
// a CUDA header. Definitions: adder_conv2d_gpu.cu.cc.
//
// Layouts as in adder_conv2d_geometry.h: input NHWC [N, H, W, C], filter
// [KH, KW, C, O], output / out_backprop NHWC [N, OH, OW, O]. Every pointer is
// device memory; `workspace` holds at least the matching *WorkspaceSize<T>
// elements of T (may be null when that size is 0). Each launcher returns 0 on
// success or the cudaError_t of the failed launch.

#ifndef ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GPU_H_
#define ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GPU_H_

#include <cstdint>

#include "custom_ops/cc/kernels/adder_conv2d_geometry.h"

// The CUDA runtime's own definition of cudaStream_t, repeated so that this
// header needs no CUDA include (a repeated identical typedef is legal C++).
typedef struct CUstream_st* cudaStream_t;

namespace addernet {
namespace gpu {

// Channels the kernels take at most: column tiles run along grid.y (at most
// 65535 blocks), 64 columns wide once there are more than 32 columns.
constexpr int64_t kMaxChannels = int64_t{65535} * 64;

// The kernels index with 32-bit ints: every tensor, the im2col row count
// N*OH*OW and depth KH*KW*C must stay below 2^31, and the channels within
// kMaxChannels. Callers check this first.
inline bool WithinKernelLimits(const AdderConvGeometry& g) {
  if (g.in_channels > kMaxChannels || g.out_channels > kMaxChannels) return false;
  const int64_t limit = int64_t{1} << 31;
  const int64_t sizes[] = {
      g.batch * g.in_height * g.in_width * g.in_channels,
      g.kernel_height * g.kernel_width * g.in_channels * g.out_channels,
      g.batch * g.out_height * g.out_width * g.out_channels,
      g.batch * g.out_height * g.out_width,
      g.kernel_height * g.kernel_width * g.in_channels,
      // Padded coordinates: oh * stride + kh must not overflow either.
      g.out_height * g.stride_h + g.kernel_height + g.in_height,
      g.out_width * g.stride_w + g.kernel_width + g.in_width,
      g.pad_top + g.in_height, g.pad_left + g.in_width,
      // The input gradient's grid: stride phases x row tiles stays below this.
      2 * g.batch * g.in_height * g.in_width,
  };
  for (int64_t s : sizes) {
    if (s >= limit) return false;
  }
  return true;
}

// output = -sum |Xpad - F| over each [KH, KW, C] window.
template <typename T>
int AdderConv2DForward(const AdderConvGeometry& g, const T* input, const T* filter,
                       T* output, cudaStream_t stream);

// input_backprop = sum clamp(F - X, -1, 1) * dY (padded positions dropped).
template <typename T>
int AdderConv2DBackpropInput(const AdderConvGeometry& g, const T* input, const T* filter,
                             const T* out_backprop, T* input_backprop, cudaStream_t stream);

// Elements of T that AdderConv2DBackpropFilter needs as workspace.
template <typename T>
int64_t BackpropFilterWorkspaceSize(const AdderConvGeometry& g);

// filter_backprop = sum (Xpad - F) * dY, computed as Xpadᵀ·dY - F * colsum(dY)
// over split row ranges, reduced in a fixed order (deterministic, no atomics).
template <typename T>
int AdderConv2DBackpropFilter(const AdderConvGeometry& g, const T* input, const T* filter,
                              const T* out_backprop, T* workspace, T* filter_backprop,
                              cudaStream_t stream);

}  // namespace gpu
}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GPU_H_
