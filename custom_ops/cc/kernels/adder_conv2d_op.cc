// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// CPU OpKernels of Addernet>AdderConv2D and its two gradient ops: validation
// and geometry in adder_conv2d_op_base.h, arithmetic in adder_conv2d_cpu.h.

#include <functional>
#include <string>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"
#include "custom_ops/cc/kernels/adder_conv2d_op_base.h"
#include "tensorflow/core/platform/threadpool.h"

namespace addernet {
namespace {

using ::tensorflow::DEVICE_CPU;

// The CPU kernels run on the op's intra-op thread pool.
class AdderConv2DCpuOpBase : public AdderConv2DOpBase {
 public:
  using AdderConv2DOpBase::AdderConv2DOpBase;

 protected:
  static tensorflow::thread::ThreadPool* Workers(OpKernelContext* ctx) {
    return ctx->device()->tensorflow_cpu_worker_threads()->workers;
  }

  static std::function<void(int64_t, int64_t,
                            const std::function<void(int64_t, int64_t)>&)>
  ParallelFor(OpKernelContext* ctx) {
    auto* workers = Workers(ctx);
    return [workers](int64_t total, int64_t cost,
                     const std::function<void(int64_t, int64_t)>& fn) {
      workers->ParallelFor(total, cost, fn);
    };
  }
};

template <typename T>
class AdderConv2DOp : public AdderConv2DCpuOpBase {
 public:
  explicit AdderConv2DOp(OpKernelConstruction* ctx) : AdderConv2DCpuOpBase(ctx) {
    std::string formulation;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("formulation", &formulation));
    max_identity_ = formulation == "max_identity";
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    AdderConvGeometry g;
    Tensor* output = nullptr;
    OP_REQUIRES_OK(ctx, PrepareForward(ctx, &g, &output));
    if (output == nullptr) return;
    Tensor workspace;
    OP_REQUIRES_OK(ctx, Workspace<T>(ctx, cpu::ForwardWorkspaceSize<T>(g), &workspace));
    const T* x = input.flat<T>().data();
    const T* f = filter.flat<T>().data();
    if (max_identity_) {
      cpu::AdderConv2DForward<T, cpu::Formulation::kMaxIdentity>(
          g, x, f, workspace.flat<T>().data(), output->flat<T>().data(), ParallelFor(ctx));
    } else {
      cpu::AdderConv2DForward<T>(g, x, f, workspace.flat<T>().data(),
                                 output->flat<T>().data(), ParallelFor(ctx));
    }
  }

 private:
  bool max_identity_ = false;
};

template <typename T>
class AdderConv2DBackpropInputOp : public AdderConv2DCpuOpBase {
 public:
  using AdderConv2DCpuOpBase::AdderConv2DCpuOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& grad = ctx->input(2);
    AdderConvGeometry g;
    Tensor* in_backprop = nullptr;
    OP_REQUIRES_OK(ctx, PrepareBackprop(ctx, 0, &g, &in_backprop));
    if (in_backprop == nullptr) return;
    if (grad.NumElements() == 0) {
      in_backprop->flat<T>().setZero();
      return;
    }
    Tensor workspace;
    OP_REQUIRES_OK(ctx, Workspace<T>(ctx, cpu::BackpropInputWorkspaceSize<T>(g), &workspace));
    cpu::AdderConv2DBackpropInput<T>(g, input.flat<T>().data(), filter.flat<T>().data(),
                                     grad.flat<T>().data(), workspace.flat<T>().data(),
                                     in_backprop->flat<T>().data(), ParallelFor(ctx));
  }
};

template <typename T>
class AdderConv2DBackpropFilterOp : public AdderConv2DCpuOpBase {
 public:
  using AdderConv2DCpuOpBase::AdderConv2DCpuOpBase;

  void Compute(OpKernelContext* ctx) override {
    const Tensor& input = ctx->input(0);
    const Tensor& filter = ctx->input(1);
    const Tensor& grad = ctx->input(2);
    AdderConvGeometry g;
    Tensor* filter_backprop = nullptr;
    OP_REQUIRES_OK(ctx, PrepareBackprop(ctx, 1, &g, &filter_backprop));
    if (filter_backprop == nullptr) return;
    if (grad.NumElements() == 0) {
      filter_backprop->flat<T>().setZero();
      return;
    }
    const int64_t shards = cpu::BackpropFilterShards(g, Workers(ctx)->NumThreads());
    Tensor workspace;
    OP_REQUIRES_OK(ctx, Workspace<T>(ctx, cpu::BackpropFilterWorkspaceSize<T>(g, shards),
                                     &workspace));
    cpu::AdderConv2DBackpropFilter<T>(
        g, input.flat<T>().data(), filter.flat<T>().data(), grad.flat<T>().data(), shards,
        workspace.flat<T>().data(), filter_backprop->flat<T>().data(), ParallelFor(ctx));
  }
};

#define REGISTER_CPU(T)                                                       \
  REGISTER_KERNEL_BUILDER(                                                    \
      Name("Addernet>AdderConv2D").Device(DEVICE_CPU).TypeConstraint<T>("T"), \
      AdderConv2DOp<T>);                                                      \
  REGISTER_KERNEL_BUILDER(Name("Addernet>AdderConv2DBackpropInput")           \
                              .Device(DEVICE_CPU)                             \
                              .TypeConstraint<T>("T"),                        \
                          AdderConv2DBackpropInputOp<T>);                     \
  REGISTER_KERNEL_BUILDER(Name("Addernet>AdderConv2DBackpropFilter")          \
                              .Device(DEVICE_CPU)                             \
                              .TypeConstraint<T>("T"),                        \
                          AdderConv2DBackpropFilterOp<T>);

REGISTER_CPU(float);
REGISTER_CPU(double);
#undef REGISTER_CPU

}  // namespace
}  // namespace addernet

// The CPU kernels' compile target, for ctypes (`addernet_tf.ops.kernel_target`).
extern "C" __attribute__((visibility("default"))) const char* AddernetCpuKernelTarget() {
  return addernet::cpu::KernelTarget();
}
