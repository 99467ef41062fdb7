// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The LiteRT custom op of adder_conv2d_litert.h: the TF op's CPU forward
// kernel (adder_conv2d_cpu.h) behind LiteRT's C custom-op interface.

#include "custom_ops/lite/adder_conv2d_litert.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"
#include "custom_ops/cc/kernels/adder_conv2d_int8.h"
#include "custom_ops/lite/thread_pool.h"
#include "litert/c/litert_custom_op_kernel.h"
#include "litert/c/litert_layout.h"
#include "litert/c/litert_model_types.h"
#include "litert/c/litert_tensor_buffer.h"

// Packed filters by the address of their data. The filter is a constant of
// the model (its address and contents fixed), so each node packs once; a
// copy of the raw filter, compared on every call, keeps a filter that does
// change from being served stale.
struct PackedFilterCache {
  struct Entry {
    int64_t dims[4];
    bool int8;
    std::vector<uint8_t> raw;
    std::vector<float> packed;         // float32 filters
    std::vector<uint8_t> packed_int8;  // int8 filters
  };
  std::mutex mu;
  std::map<const void*, std::shared_ptr<const Entry>> entries;
};

struct AddernetLiteRtKernel {
  explicit AddernetLiteRtKernel(int threads) : pool(threads) {}
  addernet::lite::ThreadPool pool;
  PackedFilterCache filters;
  // Why a node first failed (a static string), until taken: the runtime
  // ignores the status a custom kernel returns. The first, because a node
  // that fails hands the nodes after it a stand-in shape they fail on too.
  std::atomic<const char*> error{nullptr};

  void Record(const char* why) {
    const char* none = nullptr;
    error.compare_exchange_strong(none, why);
  }
};

namespace addernet {
namespace lite {
namespace {

constexpr int kGeometryRank = 7;

struct Node {
  AdderConvGeometry g;
  cpu::Formulation formulation;
};

// The node's geometry from its inputs' shapes; false (and `why`) if they
// break the op's rules.
bool Describe(size_t num_inputs, const LiteRtLayout* in, Node* node, const char** why) {
  if (num_inputs < 3 || num_inputs > 5) {
    return *why = "expects 3 inputs (x, filter, geometry), 4 (+ epilogue or requantization) "
                  "or 5 (+ residual)", false;
  }
  const LiteRtLayout &x = in[0], &f = in[1], &geo = in[2];
  if (x.rank != 4 || f.rank != 4) return *why = "x and filter must have rank 4", false;
  if (geo.rank != kGeometryRank) return *why = "geometry must have rank 7", false;
  for (int i = 0; i < 4; ++i) {
    if (x.dimensions[i] < 0 || f.dimensions[i] < 1) return *why = "dynamic or empty shape", false;
  }
  for (int i = 0; i < kGeometryRank; ++i) {
    if (geo.dimensions[i] < 1) return *why = "geometry dimensions must be >= 1", false;
  }
  if (x.dimensions[3] != f.dimensions[2]) return *why = "x's channels != filter's", false;
  if (geo.dimensions[6] > 2) return *why = "unknown formulation", false;
  // Float32's epilogue is [2 O + 2], int8's requantization [2 O + 3] (or
  // [2 O + 4] with a residual); Run tells them apart by type (a layout has none).
  if (num_inputs >= 4 &&
      (in[3].rank != 1 || in[3].dimensions[0] < 2 * f.dimensions[3] + 2 ||
       in[3].dimensions[0] > 2 * f.dimensions[3] + 4)) {
    return *why = "the 4th input must have shape [2 O + 2] (float32) or [2 O + 3] (int8; "
                  "[2 O + 4] with a residual)", false;
  }
  AdderConvGeometry& g = node->g;
  g.batch = x.dimensions[0];
  g.in_height = x.dimensions[1];
  g.in_width = x.dimensions[2];
  g.in_channels = x.dimensions[3];
  g.kernel_height = f.dimensions[0];
  g.kernel_width = f.dimensions[1];
  g.out_channels = f.dimensions[3];
  g.stride_h = geo.dimensions[0];
  g.stride_w = geo.dimensions[1];
  g.pad_top = geo.dimensions[2] - 1;
  g.pad_left = geo.dimensions[4] - 1;
  const int64_t pad_h = g.pad_top + geo.dimensions[3] - 1;
  const int64_t pad_w = g.pad_left + geo.dimensions[5] - 1;
  if (g.in_height + pad_h < g.kernel_height || g.in_width + pad_w < g.kernel_width) {
    return *why = "the padded input is smaller than the filter", false;
  }
  g.out_height = (g.in_height + pad_h - g.kernel_height) / g.stride_h + 1;
  g.out_width = (g.in_width + pad_w - g.kernel_width) / g.stride_w + 1;
  if (num_inputs == 5) {
    const LiteRtLayout& r = in[4];
    if (r.rank != 4 || r.dimensions[0] != g.batch || r.dimensions[1] != g.out_height ||
        r.dimensions[2] != g.out_width || r.dimensions[3] != g.out_channels) {
      return *why = "the residual must have the output's shape", false;
    }
  }
  node->formulation = geo.dimensions[6] == 2 ? cpu::Formulation::kMaxIdentity
                                             : cpu::Formulation::kExact;
  return true;
}

LiteRtStatus Init(void*, const void*, size_t) { return kLiteRtStatusOk; }

LiteRtStatus GetOutputLayouts(void* user_data, size_t num_inputs, const LiteRtLayout* in,
                              size_t num_outputs, LiteRtLayout* out) {
  if (num_outputs != 1) return kLiteRtStatusErrorInvalidArgument;
  Node node;
  const char* why = nullptr;
  out[0] = LiteRtLayout{};
  out[0].rank = 4;
  if (!Describe(num_inputs, in, &node, &why)) {
    std::fprintf(stderr, "%s: %s\n", ADDERNET_LITERT_OP_NAME, why);
    static_cast<AddernetLiteRtKernel*>(user_data)->Record(why);
    // A shape the node can fill (with NaN): the runtime ignores our status.
    out[0].dimensions[0] = in[0].rank > 0 ? in[0].dimensions[0] : 1;
    for (int i = 1; i < 4; ++i) out[0].dimensions[i] = 1;
    return kLiteRtStatusErrorInvalidArgument;
  }
  out[0].dimensions[0] = static_cast<int32_t>(node.g.batch);
  out[0].dimensions[1] = static_cast<int32_t>(node.g.out_height);
  out[0].dimensions[2] = static_cast<int32_t>(node.g.out_width);
  out[0].dimensions[3] = static_cast<int32_t>(node.g.out_channels);
  return kLiteRtStatusOk;
}

// Locks a buffer for the duration of a Run; unlocks on scope exit.
class Locked {
 public:
  Locked(LiteRtTensorBuffer buffer, LiteRtTensorBufferLockMode mode) : buffer_(buffer) {
    if (LiteRtLockTensorBuffer(buffer, &data_, mode) != kLiteRtStatusOk) data_ = nullptr;
  }
  ~Locked() {
    if (data_ != nullptr) LiteRtUnlockTensorBuffer(buffer_);
  }
  Locked(const Locked&) = delete;
  Locked& operator=(const Locked&) = delete;
  void* data() const { return data_; }

 private:
  LiteRtTensorBuffer buffer_;
  void* data_ = nullptr;
};

// Records why the node failed and fills a float32 output with NaN (an int8
// one keeps what it held: the kernel's error is how a caller learns of it).
LiteRtStatus Fail(AddernetLiteRtKernel* kernel, LiteRtTensorBuffer output, const char* why) {
  std::fprintf(stderr, "%s: %s\n", ADDERNET_LITERT_OP_NAME, why);
  kernel->Record(why);
  LiteRtRankedTensorType type;
  size_t bytes = 0;
  if (LiteRtGetTensorBufferTensorType(output, &type) == kLiteRtStatusOk &&
      type.element_type == kLiteRtElementTypeFloat32 &&
      LiteRtGetTensorBufferSize(output, &bytes) == kLiteRtStatusOk) {
    Locked y(output, kLiteRtTensorBufferLockModeWrite);
    float* data = static_cast<float*>(y.data());
    if (data != nullptr) {
      for (size_t i = 0; i < bytes / sizeof(float); ++i) {
        data[i] = std::numeric_limits<float>::quiet_NaN();
      }
    }
  }
  return kLiteRtStatusErrorInvalidArgument;
}

// The packed form of `filter` (float32 or int8) for geometry `g`, packed now or found packed.
std::shared_ptr<const PackedFilterCache::Entry> Packed(PackedFilterCache& cache,
                                                       const AdderConvGeometry& g,
                                                       const void* filter, bool int8) {
  const int64_t dims[4] = {g.kernel_height, g.kernel_width, g.in_channels, g.out_channels};
  const size_t bytes = static_cast<size_t>(dims[0] * dims[1] * dims[2] * dims[3]) *
                       (int8 ? sizeof(int8_t) : sizeof(float));
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.entries.find(filter);
    if (it != cache.entries.end() && it->second->int8 == int8 &&
        std::memcmp(it->second->dims, dims, sizeof(dims)) == 0 &&
        std::memcmp(it->second->raw.data(), filter, bytes) == 0) {
      return it->second;
    }
  }
  auto entry = std::make_shared<PackedFilterCache::Entry>();
  std::memcpy(entry->dims, dims, sizeof(dims));
  entry->int8 = int8;
  const auto* raw = static_cast<const uint8_t*>(filter);
  entry->raw.assign(raw, raw + bytes);
  if (int8) {
    entry->packed_int8.resize(static_cast<size_t>(int8::PackedFilterBytes(g)));
    int8::PackFilter(g, static_cast<const int8_t*>(filter), entry->packed_int8.data());
  } else {
    entry->packed.resize(cpu::ForwardWorkspaceSize<float>(g));
    cpu::PackedForwardFilter<float>(g, static_cast<const float*>(filter), entry->packed.data());
  }
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.entries[filter] = entry;
  return entry;
}

bool ValidEpilogue(const cpu::Epilogue<float>& e, int64_t channels) {
  if (!(e.lo <= e.hi)) return false;
  for (int64_t o = 0; o < channels; ++o) {
    if (!std::isfinite(e.scale[o]) || !std::isfinite(e.shift[o])) return false;
  }
  return true;
}

bool IsInt8(float v) { return v >= -128.0f && v <= 127.0f && v == std::floor(v); }

// The int8 path: x, filter and y int8, requantization float32 [2 O + 3] =
// (x's zero point, lo, hi, multiplier[O], bias[O]), and with a residual
// (int8, y's shape) [2 O + 4], its multiplier last (adder_conv2d_int8.h).
LiteRtStatus RunInt8(AddernetLiteRtKernel* kernel, const Node& node, const void* x_data,
                     const void* f_data, const float* requant, const int8_t* residual,
                     void* y_data) {
  const AdderConvGeometry& g = node.g;
  const float zero_point = requant[0];
  if (!IsInt8(zero_point) || !IsInt8(requant[1]) || !IsInt8(requant[2]) ||
      requant[1] > requant[2]) {
    return kLiteRtStatusErrorInvalidArgument;
  }
  for (int64_t i = 3; i < 3 + 2 * g.out_channels + (residual != nullptr); ++i) {
    if (!std::isfinite(requant[i])) return kLiteRtStatusErrorInvalidArgument;
  }
  const auto entry = Packed(kernel->filters, g, f_data, /*int8=*/true);
  const int8::Requantization rq{requant + 3, requant + 3 + g.out_channels,
                                static_cast<int>(requant[1]), static_cast<int>(requant[2]),
                                residual,
                                residual != nullptr ? requant[3 + 2 * g.out_channels] : 0.0f};
  int8::AdderConv2DForwardInt8(g, static_cast<const int8_t*>(x_data),
                               static_cast<int>(zero_point), entry->packed_int8.data(), rq,
                               static_cast<int8_t*>(y_data), kernel->pool);
  return kLiteRtStatusOk;
}

LiteRtStatus Run(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                 size_t num_outputs, LiteRtTensorBuffer* outputs) {
  auto* kernel = static_cast<AddernetLiteRtKernel*>(user_data);
  if (num_outputs != 1) return kLiteRtStatusErrorInvalidArgument;
  if (num_inputs < 3 || num_inputs > 5) {
    return Fail(kernel, outputs[0], "expects 3 to 5 inputs (x, filter, geometry, ...)");
  }
  LiteRtRankedTensorType types[6];
  for (size_t i = 0; i < num_inputs; ++i) {
    if (LiteRtGetTensorBufferTensorType(inputs[i], &types[i]) != kLiteRtStatusOk) {
      return Fail(kernel, outputs[0], "cannot read an input's type");
    }
  }
  LiteRtRankedTensorType& y_type = types[5];
  if (LiteRtGetTensorBufferTensorType(outputs[0], &y_type) != kLiteRtStatusOk) {
    return Fail(kernel, outputs[0], "cannot read the output's type");
  }
  const bool int8 = types[0].element_type == kLiteRtElementTypeInt8;
  const LiteRtElementType data_type = int8 ? kLiteRtElementTypeInt8 : kLiteRtElementTypeFloat32;
  if (types[0].element_type != data_type || types[1].element_type != data_type ||
      y_type.element_type != data_type) {
    return Fail(kernel, outputs[0], "x, filter and y must be all float32 or all int8");
  }
  if (int8 && num_inputs < 4) {
    return Fail(kernel, outputs[0], "the int8 op needs its 4th input, the requantization");
  }
  if (num_inputs >= 4 && types[3].element_type != kLiteRtElementTypeFloat32) {
    return Fail(kernel, outputs[0], "the 4th input (epilogue or requantization) must be float32");
  }
  if (num_inputs == 5 && types[4].element_type != data_type) {
    return Fail(kernel, outputs[0], "the residual must have x's type");
  }
  LiteRtLayout layouts[5];
  for (size_t i = 0; i < num_inputs; ++i) layouts[i] = types[i].layout;
  Node node;
  const char* why = nullptr;
  if (!Describe(num_inputs, layouts, &node, &why)) return Fail(kernel, outputs[0], why);
  const bool residual = num_inputs == 5;
  if (num_inputs >= 4 &&
      layouts[3].dimensions[0] != 2 * node.g.out_channels + (int8 ? 3 + residual : 2)) {
    return Fail(kernel, outputs[0],
                !int8 ? "the epilogue input must have shape [2 O + 2]"
                : residual ? "the requantization input must have shape [2 O + 4] with a residual"
                           : "the requantization input must have shape [2 O + 3]");
  }
  if (int8 && node.formulation != cpu::Formulation::kExact) {
    return Fail(kernel, outputs[0], "the int8 op has one formulation, exact");
  }
  const LiteRtLayout& y_layout = y_type.layout;
  if (y_layout.rank != 4 || y_layout.dimensions[0] != node.g.batch ||
      y_layout.dimensions[1] != node.g.out_height || y_layout.dimensions[2] != node.g.out_width ||
      y_layout.dimensions[3] != node.g.out_channels) {
    return Fail(kernel, outputs[0], "the output's shape does not follow from the inputs'");
  }
  Locked x(inputs[0], kLiteRtTensorBufferLockModeRead);
  Locked f(inputs[1], kLiteRtTensorBufferLockModeRead);
  Locked y(outputs[0], kLiteRtTensorBufferLockModeWrite);
  if (x.data() == nullptr || f.data() == nullptr || y.data() == nullptr) {
    return Fail(kernel, outputs[0], "cannot lock a tensor buffer");
  }
  std::unique_ptr<Locked> r;
  if (residual) {
    r = std::make_unique<Locked>(inputs[4], kLiteRtTensorBufferLockModeRead);
    if (r->data() == nullptr) return Fail(kernel, outputs[0], "cannot lock a tensor buffer");
  }
  if (int8) {
    Locked requant(inputs[3], kLiteRtTensorBufferLockModeRead);
    if (requant.data() == nullptr) return Fail(kernel, outputs[0], "cannot lock a tensor buffer");
    if (RunInt8(kernel, node, x.data(), f.data(), static_cast<const float*>(requant.data()),
                residual ? static_cast<const int8_t*>(r->data()) : nullptr,
                y.data()) != kLiteRtStatusOk) {
      return Fail(kernel, outputs[0],
                  "the requantization needs a zero point and lo <= hi in [-128, 127] and "
                  "finite multipliers and biases");
    }
    return kLiteRtStatusOk;
  }
  cpu::Epilogue<float> epilogue{};
  const cpu::Epilogue<float>* after = nullptr;
  std::unique_ptr<Locked> values;
  if (num_inputs >= 4) {
    values = std::make_unique<Locked>(inputs[3], kLiteRtTensorBufferLockModeRead);
    const auto* e = static_cast<const float*>(values->data());
    if (e == nullptr) return Fail(kernel, outputs[0], "cannot lock a tensor buffer");
    // (lo, hi, scale[O], shift[O]).
    epilogue = {e + 2, e + 2 + node.g.out_channels, e[0], e[1],
                residual ? static_cast<const float*>(r->data()) : nullptr};
    if (!ValidEpilogue(epilogue, node.g.out_channels)) {
      return Fail(kernel, outputs[0],
                  "the epilogue needs lo <= hi (not NaN) and finite scales and shifts");
    }
    after = &epilogue;
  }
  const auto entry = Packed(kernel->filters, node.g, f.data(), /*int8=*/false);
  const cpu::PackedForwardFilter<float> packed(node.g, const_cast<float*>(entry->packed.data()));
  const auto* in = static_cast<const float*>(x.data());
  auto* out = static_cast<float*>(y.data());
  if (node.formulation == cpu::Formulation::kMaxIdentity) {
    cpu::AdderConv2DForwardPacked<float, cpu::Formulation::kMaxIdentity>(node.g, in, packed, out,
                                                                         kernel->pool, after);
  } else {
    cpu::AdderConv2DForwardPacked<float>(node.g, in, packed, out, kernel->pool, after);
  }
  return kLiteRtStatusOk;
}

LiteRtStatus Destroy(void*) { return kLiteRtStatusOk; }

const LiteRtCustomOpKernel kKernel = {Init, GetOutputLayouts, Run, Destroy};

}  // namespace
}  // namespace lite
}  // namespace addernet

extern "C" {

AddernetLiteRtKernel* AddernetLiteRtKernelCreate(int num_threads) {
  if (num_threads < 1) return nullptr;
  return new (std::nothrow) AddernetLiteRtKernel(num_threads);
}

void AddernetLiteRtKernelDestroy(AddernetLiteRtKernel* kernel) { delete kernel; }

LiteRtStatus AddernetLiteRtRegister(LiteRtOptions options, AddernetLiteRtKernel* kernel) {
  if (options == nullptr || kernel == nullptr) return kLiteRtStatusErrorInvalidArgument;
  return LiteRtAddCustomOpKernelOption(options, ADDERNET_LITERT_OP_NAME,
                                       ADDERNET_LITERT_OP_VERSION, &addernet::lite::kKernel,
                                       kernel);
}

const char* AddernetLiteRtKernelTakeError(AddernetLiteRtKernel* kernel) {
  return kernel == nullptr ? nullptr : kernel->error.exchange(nullptr);
}

const char* AddernetLiteRtKernelTarget(void) { return addernet::cpu::KernelTarget(); }

const char* AddernetLiteRtInt8KernelTarget(void) { return addernet::int8::kTarget; }

}  // extern "C"
