// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// A LiteRT CompiledModel with the adder op registered, behind a small C API
// for addernet_tf.lite (ctypes). One input and one output, host memory.
// Every call returns 0 on success, or -1 with a one-line reason in `error`.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "custom_ops/lite/adder_conv2d_litert.h"
#include "litert/c/litert_compiled_model.h"
#include "litert/c/litert_environment.h"
#include "litert/c/litert_model.h"
#include "litert/c/litert_opaque_options.h"
#include "litert/c/litert_tensor_buffer.h"

namespace {

void SetError(char* error, size_t size, const std::string& message) {
  if (error != nullptr && size > 0) std::snprintf(error, size, "%s", message.c_str());
}

// "F(args) failed (LiteRtStatus 3)" for ADDERNET_CHECK(F(args)): the function's name.
std::string Failed(const char* call, LiteRtStatus status) {
  const std::string text(call);
  return text.substr(0, text.find('(')) + " failed (LiteRtStatus " + std::to_string(status) + ")";
}

size_t ElementSize(LiteRtElementType type) {
  switch (type) {
    case kLiteRtElementTypeFloat32:
    case kLiteRtElementTypeInt32:
      return 4;
    case kLiteRtElementTypeInt8:
    case kLiteRtElementTypeUInt8:
      return 1;
    default:
      return 0;
  }
}

size_t Elements(const LiteRtLayout& layout) {
  size_t n = 1;
  for (unsigned i = 0; i < layout.rank; ++i) n *= static_cast<size_t>(layout.dimensions[i]);
  return n;
}

// Host memory LiteRT accepts: 64-byte aligned.
struct Aligned {
  void* data = nullptr;
  size_t bytes = 0;
  void Reserve(size_t n) {
    if (n <= bytes) return;
    std::free(data);
    bytes = (n + 63) / 64 * 64;
    data = std::aligned_alloc(64, bytes);
  }
  ~Aligned() { std::free(data); }
};

}  // namespace

struct AddernetLiteRunner {
  LiteRtEnvironment env = nullptr;
  LiteRtModel model = nullptr;
  LiteRtOptions options = nullptr;
  LiteRtCompiledModel compiled = nullptr;
  AddernetLiteRtKernel* kernel = nullptr;
  LiteRtRankedTensorType input{}, output{};
  Aligned in, out;

  ~AddernetLiteRunner() {
    if (compiled != nullptr) LiteRtDestroyCompiledModel(compiled);
    if (options != nullptr) LiteRtDestroyOptions(options);
    if (model != nullptr) LiteRtDestroyModel(model);
    if (env != nullptr) LiteRtDestroyEnvironment(env);
    AddernetLiteRtKernelDestroy(kernel);
  }
};

extern "C" {

#define ADDERNET_CHECK(call)                                   \
  do {                                                         \
    LiteRtStatus status_ = (call);                             \
    if (status_ != kLiteRtStatusOk) {                          \
      SetError(error, error_size, Failed(#call, status_));     \
      return -1;                                               \
    }                                                          \
  } while (0)

static int Open(AddernetLiteRunner* r, const char* path, int num_threads, char* error,
                size_t error_size) {
  r->kernel = AddernetLiteRtKernelCreate(num_threads);
  if (r->kernel == nullptr) {
    SetError(error, error_size, "num_threads must be >= 1, got " + std::to_string(num_threads));
    return -1;
  }
  ADDERNET_CHECK(LiteRtCreateEnvironment(0, nullptr, &r->env));
  ADDERNET_CHECK(LiteRtCreateModelFromFile(r->env, path, &r->model));
  ADDERNET_CHECK(LiteRtCreateOptions(&r->options));
  ADDERNET_CHECK(LiteRtSetOptionsHardwareAccelerators(r->options, kLiteRtHwAcceleratorCpu));
  // The builtin ops' thread count: the CPU accelerator reads a TOML payload.
  char* toml = static_cast<char*>(std::malloc(32));
  if (toml == nullptr) {
    SetError(error, error_size, "out of memory");
    return -1;
  }
  std::snprintf(toml, 32, "num_threads = %d\n", num_threads);
  LiteRtOpaqueOptions cpu;
  if (LiteRtCreateOpaqueOptions("xnnpack", toml, std::free, &cpu) != kLiteRtStatusOk) {
    std::free(toml);
    SetError(error, error_size, "LiteRtCreateOpaqueOptions failed");
    return -1;
  }
  if (LiteRtAddOpaqueOptions(r->options, cpu) != kLiteRtStatusOk) {
    LiteRtDestroyOpaqueOptions(cpu);  // frees the payload too
    SetError(error, error_size, "LiteRtAddOpaqueOptions failed");
    return -1;
  }
  ADDERNET_CHECK(AddernetLiteRtRegister(r->options, r->kernel));
  ADDERNET_CHECK(LiteRtCreateCompiledModel(r->env, r->model, r->options, &r->compiled));
  LiteRtSignature signature;
  ADDERNET_CHECK(LiteRtGetModelSignature(r->model, 0, &signature));
  LiteRtParamIndex num_inputs = 0, num_outputs = 0;
  ADDERNET_CHECK(LiteRtGetNumSignatureInputs(signature, &num_inputs));
  ADDERNET_CHECK(LiteRtGetNumSignatureOutputs(signature, &num_outputs));
  if (num_inputs != 1 || num_outputs != 1) {
    SetError(error, error_size, "the model must have one input and one output, it has " +
                                    std::to_string(num_inputs) + " and " +
                                    std::to_string(num_outputs));
    return -1;
  }
  LiteRtTensor tensor;
  ADDERNET_CHECK(LiteRtGetSignatureInputTensorByIndex(signature, 0, &tensor));
  ADDERNET_CHECK(LiteRtGetRankedTensorType(tensor, &r->input));
  ADDERNET_CHECK(LiteRtGetSignatureOutputTensorByIndex(signature, 0, &tensor));
  ADDERNET_CHECK(LiteRtGetRankedTensorType(tensor, &r->output));
  if (ElementSize(r->input.element_type) == 0 || ElementSize(r->output.element_type) == 0) {
    SetError(error, error_size, "input and output must be float32, int32, int8 or uint8");
    return -1;
  }
  return 0;
}

AddernetLiteRunner* AddernetLiteRunnerOpen(const char* path, int num_threads, char* error,
                                           size_t error_size) {
  auto* r = new AddernetLiteRunner;
  if (Open(r, path, num_threads, error, error_size) != 0) {
    delete r;
    return nullptr;
  }
  return r;
}

void AddernetLiteRunnerClose(AddernetLiteRunner* r) { delete r; }

// The input's or output's element type (LiteRtElementType) and shape.
int AddernetLiteRunnerDescribe(const AddernetLiteRunner* r, int output, int* element_type,
                               int32_t* dims, int* rank) {
  const LiteRtRankedTensorType& t = output ? r->output : r->input;
  *element_type = t.element_type;
  *rank = static_cast<int>(t.layout.rank);
  for (unsigned i = 0; i < t.layout.rank; ++i) dims[i] = t.layout.dimensions[i];
  return 0;
}

// Resizes the input to `dims` where it differs (then Describe gives the new
// output shape).
int AddernetLiteRunnerResize(AddernetLiteRunner* r, const int32_t* dims, int rank, char* error,
                             size_t error_size) {
  if (rank != static_cast<int>(r->input.layout.rank)) {
    SetError(error, error_size, "the input must have rank " +
                                    std::to_string(r->input.layout.rank) + ", got " +
                                    std::to_string(rank));
    return -1;
  }
  if (std::memcmp(dims, r->input.layout.dimensions, rank * sizeof(int32_t)) == 0) return 0;
  int d[LITERT_TENSOR_MAX_RANK];
  for (int i = 0; i < rank; ++i) d[i] = dims[i];
  ADDERNET_CHECK(LiteRtCompiledModelResizeInputTensorNonStrict(r->compiled, 0, 0, d, rank));
  for (int i = 0; i < rank; ++i) r->input.layout.dimensions[i] = dims[i];
  ADDERNET_CHECK(
      LiteRtGetCompiledModelOutputTensorLayouts(r->compiled, 0, 1, &r->output.layout, true));
  for (unsigned i = 0; i < r->output.layout.rank; ++i) {
    if (r->output.layout.dimensions[i] < 0) {
      SetError(error, error_size, "the output's shape is not static after resizing the input");
      return -1;
    }
  }
  return 0;
}

// Runs the model on `input` (the shape of the last Resize); fills `output`
// (`output_bytes`, the output's size).
int AddernetLiteRunnerRun(AddernetLiteRunner* r, const void* input, size_t input_bytes,
                          void* output, size_t output_bytes, char* error, size_t error_size) {
  const size_t in_bytes = Elements(r->input.layout) * ElementSize(r->input.element_type);
  const size_t out_bytes = Elements(r->output.layout) * ElementSize(r->output.element_type);
  if (input_bytes != in_bytes || output_bytes != out_bytes) {
    SetError(error, error_size, "buffer sizes " + std::to_string(input_bytes) + ", " +
                                    std::to_string(output_bytes) + " != the model's " +
                                    std::to_string(in_bytes) + ", " + std::to_string(out_bytes));
    return -1;
  }
  r->in.Reserve(in_bytes);
  r->out.Reserve(out_bytes);
  std::memcpy(r->in.data, input, in_bytes);
  LiteRtTensorBuffer buffers[2] = {nullptr, nullptr};
  LiteRtStatus status =
      LiteRtCreateTensorBufferFromHostMemory(&r->input, r->in.data, r->in.bytes, nullptr,
                                             &buffers[0]);
  if (status == kLiteRtStatusOk) {
    status = LiteRtCreateTensorBufferFromHostMemory(&r->output, r->out.data, r->out.bytes,
                                                    nullptr, &buffers[1]);
  }
  if (status == kLiteRtStatusOk) {
    status = LiteRtRunCompiledModel(r->compiled, 0, 1, &buffers[0], 1, &buffers[1]);
  }
  for (LiteRtTensorBuffer b : buffers) {
    if (b != nullptr) LiteRtDestroyTensorBuffer(b);
  }
  if (status != kLiteRtStatusOk) {
    SetError(error, error_size, Failed("LiteRtRunCompiledModel", status));
    return -1;
  }
  // The runtime ignores a custom kernel's status; the kernel keeps it.
  if (const char* why = AddernetLiteRtKernelTakeError(r->kernel)) {
    SetError(error, error_size, std::string(ADDERNET_LITERT_OP_NAME) + ": " + why);
    return -1;
  }
  std::memcpy(output, r->out.data, out_bytes);
  return 0;
}

const char* AddernetLiteRunnerKernelTarget(void) { return AddernetLiteRtKernelTarget(); }

}  // extern "C"
