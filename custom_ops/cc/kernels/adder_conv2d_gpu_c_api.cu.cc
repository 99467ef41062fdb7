// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// A C ABI over the CUDA launchers, for callers without TensorFlow: the GPU
// tests (ctypes + CuPy) and benchmarks/adder_conv_gpu.py (ctypes + PyTorch).
//
// `geometry` points at the 13 int64 fields of AdderConvGeometry in
// declaration order. Pointers are device memory; `stream` is a cudaStream_t
// (0 for the default stream). Returns 0 or a cudaError_t; -1 when the shapes
// exceed the kernels' limits (WithinKernelLimits).

#include <cstdint>

#include "custom_ops/cc/kernels/adder_conv2d_gpu.h"

namespace {

addernet::AdderConvGeometry Unpack(const int64_t* v) {
  return addernet::AdderConvGeometry{v[0], v[1], v[2],  v[3],  v[4],  v[5], v[6],
                                     v[7], v[8], v[9], v[10], v[11], v[12]};
}

cudaStream_t AsStream(void* stream) { return static_cast<cudaStream_t>(stream); }

}  // namespace

#define ADDERNET_C_API(suffix, T)                                                          \
  extern "C" int addernet_adder_conv2d_forward_##suffix(const int64_t* geometry,           \
                                                        const T* input, const T* filter,   \
                                                        T* output, void* stream) {         \
    const auto g = Unpack(geometry);                                                       \
    if (!addernet::gpu::WithinKernelLimits(g)) return -1;                                  \
    return addernet::gpu::AdderConv2DForward<T>(g, input, filter, output, AsStream(stream)); \
  }                                                                                        \
  extern "C" int addernet_adder_conv2d_backprop_input_##suffix(                            \
      const int64_t* geometry, const T* input, const T* filter, const T* out_backprop,     \
      T* input_backprop, void* stream) {                                                   \
    const auto g = Unpack(geometry);                                                       \
    if (!addernet::gpu::WithinKernelLimits(g)) return -1;                                  \
    return addernet::gpu::AdderConv2DBackpropInput<T>(g, input, filter, out_backprop,      \
                                                      input_backprop, AsStream(stream));   \
  }                                                                                        \
  extern "C" int64_t addernet_adder_conv2d_backprop_filter_workspace_##suffix(             \
      const int64_t* geometry) {                                                           \
    return addernet::gpu::BackpropFilterWorkspaceSize<T>(Unpack(geometry));               \
  }                                                                                        \
  extern "C" int addernet_adder_conv2d_backprop_filter_##suffix(                           \
      const int64_t* geometry, const T* input, const T* filter, const T* out_backprop,     \
      T* workspace, T* filter_backprop, void* stream) {                                    \
    const auto g = Unpack(geometry);                                                       \
    if (!addernet::gpu::WithinKernelLimits(g)) return -1;                                  \
    return addernet::gpu::AdderConv2DBackpropFilter<T>(g, input, filter, out_backprop,     \
                                                       workspace, filter_backprop,         \
                                                       AsStream(stream));                  \
  }

ADDERNET_C_API(f32, float)
ADDERNET_C_API(f64, double)
#undef ADDERNET_C_API

#ifdef ADDERNET_CUDA_EMULATION
// Kernel launches the CPU emulation has run in this process.
extern "C" uint64_t addernet_cuda_emulation_launches() {
  return ::cuda_emulation::launches.load();
}
#endif
