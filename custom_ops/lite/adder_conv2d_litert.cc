// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The LiteRT custom op of adder_conv2d_litert.h: the TF op's CPU forward
// kernel (adder_conv2d_cpu.h) behind LiteRT's C custom-op interface.

#include "custom_ops/lite/adder_conv2d_litert.h"

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
    std::vector<float> raw, packed;
  };
  std::mutex mu;
  std::map<const float*, std::shared_ptr<const Entry>> entries;
};

struct AddernetLiteRtKernel {
  explicit AddernetLiteRtKernel(int threads) : pool(threads) {}
  addernet::lite::ThreadPool pool;
  PackedFilterCache filters;
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
  if (num_inputs != 3) return *why = "expects 3 inputs (x, filter, geometry)", false;
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
  node->formulation = geo.dimensions[6] == 2 ? cpu::Formulation::kMaxIdentity
                                             : cpu::Formulation::kExact;
  return true;
}

LiteRtStatus Init(void*, const void*, size_t) { return kLiteRtStatusOk; }

LiteRtStatus GetOutputLayouts(void*, size_t num_inputs, const LiteRtLayout* in,
                              size_t num_outputs, LiteRtLayout* out) {
  if (num_outputs != 1) return kLiteRtStatusErrorInvalidArgument;
  Node node;
  const char* why = nullptr;
  out[0] = LiteRtLayout{};
  out[0].rank = 4;
  if (!Describe(num_inputs, in, &node, &why)) {
    std::fprintf(stderr, "%s: %s\n", ADDERNET_LITERT_OP_NAME, why);
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

LiteRtStatus Fail(LiteRtTensorBuffer output, const char* why) {
  std::fprintf(stderr, "%s: %s\n", ADDERNET_LITERT_OP_NAME, why);
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

// The packed form of `filter` for geometry `g`, packed now or found packed.
std::shared_ptr<const PackedFilterCache::Entry> Packed(PackedFilterCache& cache,
                                                       const AdderConvGeometry& g,
                                                       const float* filter) {
  const int64_t dims[4] = {g.kernel_height, g.kernel_width, g.in_channels, g.out_channels};
  const size_t count = static_cast<size_t>(dims[0] * dims[1] * dims[2] * dims[3]);
  {
    std::lock_guard<std::mutex> lock(cache.mu);
    auto it = cache.entries.find(filter);
    if (it != cache.entries.end() && std::memcmp(it->second->dims, dims, sizeof(dims)) == 0 &&
        std::memcmp(it->second->raw.data(), filter, count * sizeof(float)) == 0) {
      return it->second;
    }
  }
  auto entry = std::make_shared<PackedFilterCache::Entry>();
  std::memcpy(entry->dims, dims, sizeof(dims));
  entry->raw.assign(filter, filter + count);
  entry->packed.resize(cpu::ForwardWorkspaceSize<float>(g));
  cpu::PackedForwardFilter<float>(g, filter, entry->packed.data());
  std::lock_guard<std::mutex> lock(cache.mu);
  cache.entries[filter] = entry;
  return entry;
}

LiteRtStatus Run(void* user_data, size_t num_inputs, const LiteRtTensorBuffer* inputs,
                 size_t num_outputs, LiteRtTensorBuffer* outputs) {
  if (num_outputs != 1) return kLiteRtStatusErrorInvalidArgument;
  if (num_inputs != 3) return Fail(outputs[0], "expects 3 inputs (x, filter, geometry)");
  LiteRtRankedTensorType types[4];
  for (size_t i = 0; i < 3; ++i) {
    if (LiteRtGetTensorBufferTensorType(inputs[i], &types[i]) != kLiteRtStatusOk) {
      return Fail(outputs[0], "cannot read an input's type");
    }
  }
  if (LiteRtGetTensorBufferTensorType(outputs[0], &types[3]) != kLiteRtStatusOk) {
    return Fail(outputs[0], "cannot read the output's type");
  }
  if (types[0].element_type != kLiteRtElementTypeFloat32 ||
      types[1].element_type != kLiteRtElementTypeFloat32 ||
      types[3].element_type != kLiteRtElementTypeFloat32) {
    return Fail(outputs[0], "x, filter and y must be float32");
  }
  const LiteRtLayout layouts[3] = {types[0].layout, types[1].layout, types[2].layout};
  Node node;
  const char* why = nullptr;
  if (!Describe(3, layouts, &node, &why)) return Fail(outputs[0], why);
  const LiteRtLayout& y_layout = types[3].layout;
  if (y_layout.rank != 4 || y_layout.dimensions[0] != node.g.batch ||
      y_layout.dimensions[1] != node.g.out_height || y_layout.dimensions[2] != node.g.out_width ||
      y_layout.dimensions[3] != node.g.out_channels) {
    return Fail(outputs[0], "the output's shape does not follow from the inputs'");
  }
  Locked x(inputs[0], kLiteRtTensorBufferLockModeRead);
  Locked f(inputs[1], kLiteRtTensorBufferLockModeRead);
  Locked y(outputs[0], kLiteRtTensorBufferLockModeWrite);
  if (x.data() == nullptr || f.data() == nullptr || y.data() == nullptr) {
    return Fail(outputs[0], "cannot lock a tensor buffer");
  }
  auto* kernel = static_cast<AddernetLiteRtKernel*>(user_data);
  const auto entry = Packed(kernel->filters, node.g, static_cast<const float*>(f.data()));
  const cpu::PackedForwardFilter<float> packed(node.g, const_cast<float*>(entry->packed.data()));
  const auto* in = static_cast<const float*>(x.data());
  auto* out = static_cast<float*>(y.data());
  if (node.formulation == cpu::Formulation::kMaxIdentity) {
    cpu::AdderConv2DForwardPacked<float, cpu::Formulation::kMaxIdentity>(node.g, in, packed, out,
                                                                         kernel->pool);
  } else {
    cpu::AdderConv2DForwardPacked<float>(node.g, in, packed, out, kernel->pool);
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

const char* AddernetLiteRtKernelTarget(void) { return addernet::cpu::KernelTarget(); }

}  // extern "C"
