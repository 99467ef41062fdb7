// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// GPU OpKernels of Addernet>AdderConv2D and its two gradient ops: validation
// and geometry in adder_conv2d_op_base.h, the work in the CUDA launchers of
// adder_conv2d_gpu.h, queued on the op's stream. Compiled with g++ and TF's
// headers only; empty unless the build enables CUDA (ADDERNET_WITH_CUDA=1,
// which setup.py and custom_ops/BUILD set, with the nvcc-built launchers,
// when custom_ops/cuda_config.py says so).
//
// With ADDERNET_CUDA_EMULATION as well, the same OpKernels are registered on
// DEVICE_CPU under the kernel label "cuda_emulation" and call launchers run
// by custom_ops/emulation/cuda_emulation.h: a test-only library
// (custom_ops/cuda_launchers.py, build_emulated_opkernels) that runs this file
// inside TensorFlow where there is no GPU.

#if ADDERNET_WITH_CUDA

#include "absl/strings/str_cat.h"
#include "custom_ops/cc/kernels/adder_conv2d_gpu.h"
#include "custom_ops/cc/kernels/adder_conv2d_op_base.h"
#ifndef ADDERNET_CUDA_EMULATION
#include "xla/stream_executor/stream.h"
#endif

namespace addernet {
namespace {

#ifdef ADDERNET_CUDA_EMULATION
#define ADDERNET_GPU_KERNEL(op) \
  Name(op).Device(::tensorflow::DEVICE_CPU).Label("cuda_emulation")
#else
#define ADDERNET_GPU_KERNEL(op) Name(op).Device(::tensorflow::DEVICE_GPU)
#endif

class AdderConv2DGpuOpBase : public AdderConv2DOpBase {
 public:
  using AdderConv2DOpBase::AdderConv2DOpBase;

 protected:
  static cudaStream_t Stream(OpKernelContext* ctx) {
#ifdef ADDERNET_CUDA_EMULATION
    (void)ctx;
    return nullptr;  // the emulation runs each launch to completion
#else
    return static_cast<cudaStream_t>(
        ctx->op_device_context()->stream()->platform_specific_handle().stream);
#endif
  }

  absl::Status CheckDeviceLimits(const AdderConvGeometry& g) const override {
    if (gpu::WithinKernelLimits(g)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "`input`/`filters` too large for the GPU adder kernels (32-bit indexing, at most ",
        gpu::kMaxChannels, " channels): input [",
        g.batch, ", ", g.in_height, ", ", g.in_width, ", ", g.in_channels, "], filter [",
        g.kernel_height, ", ", g.kernel_width, ", ", g.in_channels, ", ", g.out_channels,
        "]; split the batch or the channels"));
  }

  static absl::Status Launched(int status, const char* what) {
    if (status == 0) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("CUDA error ", status, " launching ", what));
  }
};

template <typename T>
class AdderConv2DGpuOp : public AdderConv2DGpuOpBase {
 public:
  using AdderConv2DGpuOpBase::AdderConv2DGpuOpBase;

  void Compute(OpKernelContext* ctx) override {
    AdderConvGeometry g;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, PrepareForward(ctx, &g, &output));
    if (output == nullptr) return;
    OP_REQUIRES_OK(ctx, Launched(gpu::AdderConv2DForward<T>(
                                     g, ctx->input(0).flat<T>().data(),
                                     ctx->input(1).flat<T>().data(),
                                     output->flat<T>().data(), Stream(ctx)),
                                 "AdderConv2D"));
  }
};

// An empty out_backprop needs no special case here: the launchers sum over
// nothing and write zeros.
template <typename T>
class AdderConv2DBackpropInputGpuOp : public AdderConv2DGpuOpBase {
 public:
  using AdderConv2DGpuOpBase::AdderConv2DGpuOpBase;

  void Compute(OpKernelContext* ctx) override {
    AdderConvGeometry g;
    Tensor* in_backprop = nullptr;
    OP_REQUIRES_OK(ctx, PrepareBackprop(ctx, 0, &g, &in_backprop));
    if (in_backprop == nullptr) return;
    OP_REQUIRES_OK(ctx, Launched(gpu::AdderConv2DBackpropInput<T>(
                                     g, ctx->input(0).flat<T>().data(),
                                     ctx->input(1).flat<T>().data(),
                                     ctx->input(2).flat<T>().data(),
                                     in_backprop->flat<T>().data(), Stream(ctx)),
                                 "AdderConv2DBackpropInput"));
  }
};

template <typename T>
class AdderConv2DBackpropFilterGpuOp : public AdderConv2DGpuOpBase {
 public:
  using AdderConv2DGpuOpBase::AdderConv2DGpuOpBase;

  void Compute(OpKernelContext* ctx) override {
    AdderConvGeometry g;
    Tensor* filter_backprop = nullptr;
    OP_REQUIRES_OK(ctx, PrepareBackprop(ctx, 1, &g, &filter_backprop));
    if (filter_backprop == nullptr) return;
    Tensor workspace;
    OP_REQUIRES_OK(ctx, Workspace<T>(ctx, gpu::BackpropFilterWorkspaceSize<T>(g), &workspace));
    OP_REQUIRES_OK(ctx, Launched(gpu::AdderConv2DBackpropFilter<T>(
                                     g, ctx->input(0).flat<T>().data(),
                                     ctx->input(1).flat<T>().data(),
                                     ctx->input(2).flat<T>().data(), workspace.flat<T>().data(),
                                     filter_backprop->flat<T>().data(), Stream(ctx)),
                                 "AdderConv2DBackpropFilter"));
  }
};

#define REGISTER_GPU(T)                                                                 \
  REGISTER_KERNEL_BUILDER(ADDERNET_GPU_KERNEL("Addernet>AdderConv2D").TypeConstraint<T>("T"), \
                          AdderConv2DGpuOp<T>);                                         \
  REGISTER_KERNEL_BUILDER(                                                              \
      ADDERNET_GPU_KERNEL("Addernet>AdderConv2DBackpropInput").TypeConstraint<T>("T"),  \
      AdderConv2DBackpropInputGpuOp<T>);                                                \
  REGISTER_KERNEL_BUILDER(                                                              \
      ADDERNET_GPU_KERNEL("Addernet>AdderConv2DBackpropFilter").TypeConstraint<T>("T"), \
      AdderConv2DBackpropFilterGpuOp<T>);

REGISTER_GPU(float);
REGISTER_GPU(double);
#undef REGISTER_GPU
#undef ADDERNET_GPU_KERNEL

}  // namespace
}  // namespace addernet

#endif  // ADDERNET_WITH_CUDA
