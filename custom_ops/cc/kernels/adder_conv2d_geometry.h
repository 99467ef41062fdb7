// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// Geometry of one adder convolution, shared by the CPU and CUDA kernels and
// the TF OpKernels. Plain C++: no TensorFlow or CUDA headers.
//
// Layouts: input NHWC [N, H, W, C], filter [KH, KW, C, O], output NHWC
// [N, OH, OW, O]. Input row ih = oh * stride_h + kh - pad_top (likewise for
// columns); rows outside [0, H) are zero padding.

#ifndef ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GEOMETRY_H_
#define ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GEOMETRY_H_

#include <cstdint>

namespace addernet {

struct AdderConvGeometry {
  int64_t batch, in_height, in_width, in_channels;
  int64_t kernel_height, kernel_width, out_channels;
  int64_t out_height, out_width;
  int64_t stride_h, stride_w;
  int64_t pad_top, pad_left;  // bottom/right follow from the output size.
};

}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_GEOMETRY_H_
