// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The adder convolution as a LiteRT custom op, for apps that run a
// `tflite_adder` model (python -m addernet_tf.export --format=tflite_adder).
//
//   #include "custom_ops/lite/adder_conv2d_litert.h"
//   AddernetLiteRtKernel* adder = AddernetLiteRtKernelCreate(/*num_threads=*/2);
//   LiteRtOptions options;  LiteRtCreateOptions(&options);
//   LiteRtSetOptionsHardwareAccelerators(options, kLiteRtHwAcceleratorCpu);
//   AddernetLiteRtRegister(options, adder);
//   LiteRtCreateCompiledModel(env, model, options, &compiled);
//   ...                                    // run as any compiled model
//   LiteRtDestroyCompiledModel(compiled);  AddernetLiteRtKernelDestroy(adder);
//
// Link libaddernet_litert (addernet_tf/lite/_adder_litert.so) and LiteRT's
// libLiteRt.so. The kernel must outlive every compiled model it is added to.
//
// The op, custom code "Addernet>AdderConv2D" version 1, NHWC, float32
// (`tflite_adder`) or int8 (`tflite_adder_int8`):
//   input 0  x         [N, H, W, C]
//   input 1  filter    [KH, KW, C, O]   (a constant)
//   input 2  geometry  int8, rank 7, shape [stride_h, stride_w, pad_top + 1,
//                      pad_bottom + 1, pad_left + 1, pad_right + 1,
//                      formulation + 1] (0 exact, 1 max identity; int8:
//                      exact only); its values are unused. The runtime
//                      gives a kernel its inputs' shapes but not the node's
//                      options, so the geometry travels as a shape.
//   input 3  int8: the requantization, float32 [2 O + 3]: z_x, lo, hi,
//                      multiplier[O], bias[O], and with input 4 one more
//                      float, rm (python: addernet_tf.lite.int8).
//            float32, optional: the epilogue, float32 [2 O + 2]: lo, hi,
//                      scale[O], shift[O] (python: addernet_tf.lite.epilogue;
//                      lo and hi may be -inf and +inf).
//   input 4  optional: a residual r of y's type and shape (a block's shortcut).
//   output 0 y         [N, OH, OW, O], OH = (H + pad_top + pad_bottom - KH)
//                      / stride_h + 1 (likewise OW). float32: y = -sum |x -
//                      filter|, with an epilogue min(max(scale[o] * y +
//                      shift[o] [+ r], lo), hi); int8 (x and filter on one
//                      grid, pads at z_x): y = clamp(round(bias[o] -
//                      multiplier[o] * sum |x - filter| [+ rm * r]), lo, hi),
//                      which holds the layer's BN, the block's ADD and the
//                      ReLU when they are folded in.
// A node that breaks these rules writes why on stderr, records it in the
// kernel (AddernetLiteRtKernelTakeError) and outputs NaN (float32) in a
// [N, 1, 1, 1] stand-in shape, which fails the model's preparation wherever
// a later op needs the real one (the runtime ignores a custom kernel's
// status, so an app checks the kernel's error after each run).

#ifndef ADDERNET_CUSTOM_OPS_LITE_ADDER_CONV2D_LITERT_H_
#define ADDERNET_CUSTOM_OPS_LITE_ADDER_CONV2D_LITERT_H_

#include "litert/c/litert_common.h"
#include "litert/c/litert_options.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ADDERNET_LITERT_OP_NAME "Addernet>AdderConv2D"
#define ADDERNET_LITERT_OP_VERSION 1

typedef struct AddernetLiteRtKernel AddernetLiteRtKernel;

// A kernel whose convolutions use `num_threads` threads (>= 1); NULL if
// num_threads < 1.
AddernetLiteRtKernel* AddernetLiteRtKernelCreate(int num_threads);

void AddernetLiteRtKernelDestroy(AddernetLiteRtKernel* kernel);

// Adds the op to `options` (before LiteRtCreateCompiledModel).
LiteRtStatus AddernetLiteRtRegister(LiteRtOptions options, AddernetLiteRtKernel* kernel);

// Why a node first failed since the previous call (a static string), or NULL;
// taking it clears it.
const char* AddernetLiteRtKernelTakeError(AddernetLiteRtKernel* kernel);

// What the kernels were compiled for, e.g. "avx512 (64-byte vectors, 32 registers)"
// (float32) and "avx512bw vpsadbw (64 byte pairs per instruction)" (int8).
const char* AddernetLiteRtKernelTarget(void);
const char* AddernetLiteRtInt8KernelTarget(void);

#ifdef __cplusplus
}
#endif

#endif  // ADDERNET_CUSTOM_OPS_LITE_ADDER_CONV2D_LITERT_H_
