// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The part of the adder OpKernels that does not depend on the device:
// attributes, input validation (InvalidArgumentError naming the argument) and
// the geometry handed to the CPU and CUDA kernels.

#ifndef ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_OP_BASE_H_
#define ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_OP_BASE_H_

#include <algorithm>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "custom_ops/cc/kernels/adder_conv2d_geometry.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace addernet {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;

// TensorFlow's SAME rule: the extra padded row/column goes after.
inline void SamePadding(int64_t size, int64_t kernel, int64_t stride, int64_t* out,
                        int64_t* before) {
  *out = (size + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((*out - 1) * stride + kernel - size, 0);
  *before = total / 2;
}

// Attributes, input validation and geometry of the adder ops, shared by the
// CPU and GPU OpKernels.
class AdderConv2DOpBase : public OpKernel {
 public:
  explicit AdderConv2DOpBase(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("strides", &strides_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("padding", &padding_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("explicit_paddings", &explicit_paddings_));
    OP_REQUIRES(ctx, strides_.size() == 2 && strides_[0] > 0 && strides_[1] > 0,
                absl::InvalidArgumentError(absl::StrCat(
                    "`strides` must be two positive ints [stride_h, stride_w], got [",
                    absl::StrJoin(strides_, ", "), "]")));
    if (padding_ == "EXPLICIT") {
      OP_REQUIRES(ctx, explicit_paddings_.size() == 4,
                  absl::InvalidArgumentError(absl::StrCat(
                      "`explicit_paddings` must be [top, bottom, left, right], got [",
                      absl::StrJoin(explicit_paddings_, ", "), "]")));
      for (int p : explicit_paddings_) {
        OP_REQUIRES(ctx, p >= 0,
                    absl::InvalidArgumentError(absl::StrCat(
                        "`explicit_paddings` must be non-negative, got [",
                        absl::StrJoin(explicit_paddings_, ", "), "]")));
      }
    } else {
      explicit_paddings_.assign(4, 0);
    }
  }

 protected:
  // Validates `input` [N, H, W, C] and `filter` [KH, KW, C, O] and fills `g`.
  absl::Status Geometry(const Tensor& input, const Tensor& filter,
                        AdderConvGeometry* g) const {
    if (input.dims() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`input` must be 4-D [N, H, W, C], got shape ", input.shape().DebugString()));
    }
    if (filter.dims() != 4) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`filters` must be 4-D [KH, KW, C, O], got shape ",
          filter.shape().DebugString()));
    }
    if (input.dim_size(3) != filter.dim_size(2)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`filters` expects ", filter.dim_size(2), " input channels but `input` has ",
          input.dim_size(3), " (input shape ", input.shape().DebugString(),
          ", filter shape ", filter.shape().DebugString(), ")"));
    }
    g->batch = input.dim_size(0);
    g->in_height = input.dim_size(1);
    g->in_width = input.dim_size(2);
    g->in_channels = input.dim_size(3);
    g->kernel_height = filter.dim_size(0);
    g->kernel_width = filter.dim_size(1);
    g->out_channels = filter.dim_size(3);
    g->stride_h = strides_[0];
    g->stride_w = strides_[1];
    if (g->kernel_height == 0 || g->kernel_width == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`filters` must have a positive kernel size, got shape ",
          filter.shape().DebugString()));
    }
    if (padding_ == "SAME") {
      SamePadding(g->in_height, g->kernel_height, g->stride_h, &g->out_height, &g->pad_top);
      SamePadding(g->in_width, g->kernel_width, g->stride_w, &g->out_width, &g->pad_left);
      return absl::OkStatus();
    }
    g->pad_top = explicit_paddings_[0];
    g->pad_left = explicit_paddings_[2];
    const int64_t padded_h = g->in_height + explicit_paddings_[0] + explicit_paddings_[1];
    const int64_t padded_w = g->in_width + explicit_paddings_[2] + explicit_paddings_[3];
    if (g->kernel_height > padded_h || g->kernel_width > padded_w) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`filters` kernel ", g->kernel_height, "x", g->kernel_width,
          " is larger than the padded `input` ", padded_h, "x", padded_w,
          " (input shape ", input.shape().DebugString(), ", padding ", padding_, ")"));
    }
    g->out_height = (padded_h - g->kernel_height) / g->stride_h + 1;
    g->out_width = (padded_w - g->kernel_width) / g->stride_w + 1;
    return absl::OkStatus();
  }

  // Checks that `out_backprop` is [N, OH, OW, O] for geometry `g`.
  static absl::Status CheckOutBackprop(const Tensor& grad, const AdderConvGeometry& g) {
    const TensorShape expected({g.batch, g.out_height, g.out_width, g.out_channels});
    if (grad.shape() != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          "`out_backprop` must have shape ", expected.DebugString(), ", got ",
          grad.shape().DebugString()));
    }
    return absl::OkStatus();
  }

  // What a device's kernels cannot take beyond Geometry's checks; called by
  // the Prepare* prologues before any output is allocated.
  virtual absl::Status CheckDeviceLimits(const AdderConvGeometry&) const {
    return absl::OkStatus();
  }

  // Shared prologue of the forward op: validates and allocates output 0
  // [N, OH, OW, O]. `*out` is left null when that output is empty.
  absl::Status PrepareForward(OpKernelContext* ctx, AdderConvGeometry* g, Tensor** out) const {
    *out = nullptr;
    TF_RETURN_IF_ERROR(Geometry(ctx->input(0), ctx->input(1), g));
    TF_RETURN_IF_ERROR(CheckDeviceLimits(*g));
    Tensor* result = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(
        0, TensorShape({g->batch, g->out_height, g->out_width, g->out_channels}), &result));
    if (result->NumElements() > 0) *out = result;
    return absl::OkStatus();
  }

  // Shared prologue of the gradient ops: validates and allocates output 0
  // shaped like input `like`. `*out` is left null when that output is empty.
  absl::Status PrepareBackprop(OpKernelContext* ctx, int like, AdderConvGeometry* g,
                               Tensor** out) const {
    *out = nullptr;
    TF_RETURN_IF_ERROR(Geometry(ctx->input(0), ctx->input(1), g));
    TF_RETURN_IF_ERROR(CheckOutBackprop(ctx->input(2), *g));
    TF_RETURN_IF_ERROR(CheckDeviceLimits(*g));
    Tensor* result = nullptr;
    TF_RETURN_IF_ERROR(ctx->allocate_output(0, ctx->input(like).shape(), &result));
    if (result->NumElements() > 0) *out = result;
    return absl::OkStatus();
  }

  // Kernel scratch comes from TF's allocator, so memory accounting sees it.
  template <typename T>
  static absl::Status Workspace(OpKernelContext* ctx, int64_t size, Tensor* t) {
    return ctx->allocate_temp(tensorflow::DataTypeToEnum<T>::value,
                              TensorShape({size}), t);
  }

 private:
  std::vector<int32_t> strides_;
  std::string padding_;
  std::vector<int32_t> explicit_paddings_;
};

}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_OP_BASE_H_
