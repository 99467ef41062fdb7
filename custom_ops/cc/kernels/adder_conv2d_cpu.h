// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// CPU kernels of the adder convolution, free of TensorFlow headers.
//
// Layouts: input NHWC [N, H, W, C], filter [KH, KW, C, O], output NHWC
// [N, OH, OW, O]. All three kernels read the input through a zero-padded
// window: a padded position holds 0, so it adds |F| to the forward sum and
// (0 - F) * dY to the filter gradient, and its own gradient is dropped.
//
// Vectorization uses GCC/Clang vector extensions (32-byte vectors), which the
// compiler lowers to AVX2 with -march=native and to SSE pairs otherwise.
// Threading goes through a caller-supplied `ParallelFor(units, cost, fn)`
// where fn(begin, end) processes units [begin, end); the TF OpKernel passes
// the op's intra-op thread pool.

#ifndef ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_CPU_H_
#define ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_CPU_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include "custom_ops/cc/kernels/adder_conv2d_geometry.h"

namespace addernet {
namespace cpu {

template <typename T>
struct Simd;
template <>
struct Simd<float> {
  typedef float V __attribute__((vector_size(32), aligned(4)));
  static constexpr int kLanes = 8;
};
template <>
struct Simd<double> {
  typedef double V __attribute__((vector_size(32), aligned(8)));
  static constexpr int kLanes = 4;
};

// Whole 32-byte loads and stores. With AVX they are the unaligned-move
// intrinsics: a 32-byte memcpy is expanded "by pieces", and GCC's generic
// tuning (-march=x86-64-v3, haswell, ...) moves pieces of 16 bytes, so every
// vector went through a stack slot as two 16-byte halves and was read back as
// one 32-byte load (a store-forwarding stall), and the tile's accumulators,
// their address taken, lived on the stack.
#if defined(__AVX__)
inline Simd<float>::V Load(const float* p) {
  return (Simd<float>::V)_mm256_loadu_ps(p);
}
inline Simd<double>::V Load(const double* p) {
  return (Simd<double>::V)_mm256_loadu_pd(p);
}
inline void Store(float* p, Simd<float>::V v) { _mm256_storeu_ps(p, (__m256)v); }
inline void Store(double* p, Simd<double>::V v) { _mm256_storeu_pd(p, (__m256d)v); }
#else
template <typename T>
inline typename Simd<T>::V Load(const T* p) {
  typename Simd<T>::V v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <typename T>
inline void Store(T* p, typename Simd<T>::V v) {
  std::memcpy(p, &v, sizeof(v));
}
#endif
// Written so GCC emits one vbroadcastss/vandps: `V{} + x` costs a scalar
// add, lane-by-lane writes become insert chains, integer masks leave the
// floating-point domain.
inline Simd<float>::V Broadcast(float x) {
  return Simd<float>::V{x, x, x, x, x, x, x, x};
}
inline Simd<double>::V Broadcast(double x) {
  return Simd<double>::V{x, x, x, x};
}
template <typename T>
inline typename Simd<T>::V Abs(typename Simd<T>::V v) {
  for (int l = 0; l < Simd<T>::kLanes; ++l) v[l] = std::abs(T(v[l]));
  return v;
}

// Pins a value in a vector register: without it GCC re-loads filter vectors
// from memory inside the arithmetic of the forward tile, costing load slots.
#if defined(__GNUC__) && defined(__AVX__)
#define ADDERNET_IN_REGISTER(v) asm("" : "+x"(v))
#else
#define ADDERNET_IN_REGISTER(v) (void)0
#endif
// A register tile compiled as a function of its own: its registers are
// allocated for the tile alone, the same in every caller, not squeezed by the
// caller's live values. Inlined into the dF lambda, whose loops keep many
// pointers live, the AVX2 filter tile spilled a dY vector to the stack in
// benchmarks/kernel_isa.cc and not in the TF op (30% slower). Not used for
// the forward and dX tiles: there a call per tile measured 5-15% slower
// (short dX tiles at stride 2), and tests/ops/test_cpu_tiles_in_registers.py
// checks them inlined in every translation unit that compiles them.
#if defined(__GNUC__)
#define ADDERNET_TILE __attribute__((noinline))
#else
#define ADDERNET_TILE inline
#endif

// clamp(v, -1, 1), keeping NaN. With AVX, vmaxps/vminps directly (GCC turns
// the portable spelling into compare + masked-move pairs inside the tile);
// max(lo, v) and min(hi, v) return v when it is NaN.
#if defined(__AVX__)
inline Simd<float>::V ClampUnit(Simd<float>::V v) {
  const __m256 t = _mm256_max_ps(_mm256_set1_ps(-1.0f), (__m256)v);
  return (Simd<float>::V)_mm256_min_ps(_mm256_set1_ps(1.0f), t);
}
inline Simd<double>::V ClampUnit(Simd<double>::V v) {
  const __m256d t = _mm256_max_pd(_mm256_set1_pd(-1.0), (__m256d)v);
  return (Simd<double>::V)_mm256_min_pd(_mm256_set1_pd(1.0), t);
}
#else
template <typename V>
inline V ClampUnit(V v) {
  const V lo = Broadcast(decltype(v[0] + 0)(-1)), hi = Broadcast(decltype(v[0] + 0)(1));
  v = lo > v ? lo : v;
  return hi < v ? hi : v;
}
#endif

// max(a, b) lane by lane: the max identity's one operation per pair.
#if defined(__AVX__)
inline Simd<float>::V Max(Simd<float>::V a, Simd<float>::V b) {
  return (Simd<float>::V)_mm256_max_ps((__m256)a, (__m256)b);
}
inline Simd<double>::V Max(Simd<double>::V a, Simd<double>::V b) {
  return (Simd<double>::V)_mm256_max_pd((__m256d)a, (__m256d)b);
}
#else
template <typename V>
inline V Max(V a, V b) {
  return a > b ? a : b;
}
#endif

inline int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// How the forward pass sums a window. kExact: sum |x - f| (three operations
// per pair: subtract, |.|, add). kMaxIdentity: |x - f| = 2 max(x, f) - x - f,
// so the sum is 2 sum max(x, f) - sum x - sum f, with sum x shared by all
// output channels of a pixel and sum f a constant per output channel: two
// operations per pair (max, add). Opt-in: it rounds differently (the error
// grows with sum |x| + sum |f|, not with the result; docs/DESIGN.md has the
// bound) and turns an infinite result into NaN.
enum class Formulation { kExact, kMaxIdentity };

// What the kernels were compiled for, as `benchmarks.adder_conv` prints it.
inline const char* KernelTarget() {
#if defined(__AVX512F__)
  return "avx512 (64-byte vectors, 32 registers)";
#elif defined(__AVX2__)
  return "avx2 (32-byte vectors, 16 registers)";
#elif defined(__AVX__)
  return "avx (32-byte vectors, 16 registers)";
#else
  return "portable (32-byte GCC vectors as pairs of 16-byte registers)";
#endif
}

// 32-byte vector registers of the target the kernels are compiled for: 32
// with AVX-512VL (EVEX encodings reach ymm16-31), 16 with AVX/AVX2 (ymm0-15);
// NEON's 32 128-bit registers hold 16 such vectors as pairs (SSE's 16 only 8,
// a slow path either way). The register tiles
// below are sized from it at compile time so that no accumulator, filter
// vector or constant of a hot loop round-trips through the stack:
//   forward   NP=4 pixels x 2 vectors: 8 accumulators + 2 filter vectors +
//             the FMA's 1 + the |.| mask + broadcast + temporary = 14 (both);
//   dF        NK=4 offsets x 2 vectors: 8 + 2 dY vectors + broadcast = 11 (both);
//   dX        NP=4 pixels, 2 output channels per step: 32 registers hold two
//             accumulator sets (a, b: 8) + 4 inputs + 2 filter vectors + the
//             clamp's -1 and 1 + dY broadcast + temporaries = 18; with 16 one
//             set (a: 4) keeps it at 14.
#if defined(__AVX512VL__)
constexpr int kVectorRegisters = 32;
#else
constexpr int kVectorRegisters = 16;
#endif

// Output channels per register block in the forward and filter kernels.
template <typename T>
constexpr int64_t kOutBlock = 2 * Simd<T>::kLanes;
constexpr int kPixelBlock = 4;

// Input columns an output row reads, padding included: KW for the first output
// column, then stride_w more for each further one.
inline int64_t PaddedRowWidth(const AdderConvGeometry& g) {
  return (g.out_width - 1) * g.stride_w + g.kernel_width;
}

// Padded input rows for one output row. Row i points at KW*C-contiguous
// windows: window of output column ow starts at ow * stride_w * C. Rows that
// fall entirely in the vertical padding are nullptr.
template <typename T>
class PaddedRows {
 public:
  explicit PaddedRows(const AdderConvGeometry& g)
      : g_(g),
        width_(PaddedRowWidth(g)),
        direct_(g.pad_left == 0 && width_ <= g.in_width),
        buffer_(direct_ ? 0 : g.kernel_height * width_ * g.in_channels),
        rows_(g.kernel_height) {}

  // Fills rows for output row `oh` of image `n`; returns the row pointers.
  const T* const* Fill(const T* input, int64_t n, int64_t oh) {
    const int64_t c = g_.in_channels;
    for (int64_t i = 0; i < g_.kernel_height; ++i) {
      const int64_t h = oh * g_.stride_h + i - g_.pad_top;
      if (h < 0 || h >= g_.in_height) {
        rows_[i] = nullptr;
        continue;
      }
      const T* src = input + ((n * g_.in_height + h) * g_.in_width) * c;
      if (direct_) {
        rows_[i] = src;
        continue;
      }
      T* dst = buffer_.data() + i * width_ * c;
      const int64_t left = std::min(g_.pad_left, width_);
      const int64_t copy = std::max<int64_t>(
          0, std::min(g_.in_width, width_ - g_.pad_left));
      std::fill(dst, dst + left * c, T(0));
      std::memcpy(dst + left * c, src, copy * c * sizeof(T));
      std::fill(dst + (left + copy) * c, dst + width_ * c, T(0));
      rows_[i] = dst;
    }
    return rows_.data();
  }

 private:
  const AdderConvGeometry& g_;
  const int64_t width_;
  const bool direct_;
  std::vector<T> buffer_;
  std::vector<const T*> rows_;
};

// ---------------------------------------------------------------- forward

// Filter repacked as [O/OB][KH][KW*C][OB] (output channels padded with 0),
// followed by per-kernel-row sums of |F| as [KH][Op], used for rows in the
// padding, and of F as [KH][Op] (the max identity's sum f). Lives in
// caller-provided memory of ForwardWorkspaceSize elements.
template <typename T>
int64_t ForwardWorkspaceSize(const AdderConvGeometry& g) {
  const int64_t padded_out = RoundUp(g.out_channels, kOutBlock<T>);
  return g.kernel_height * (g.kernel_width * g.in_channels + 2) * padded_out;
}

template <typename T>
struct PackedForwardFilter {
  // A view of a workspace that the constructor below filled for the same
  // kernel size, channels and output channels (the LiteRT op keeps those).
  PackedForwardFilter(const AdderConvGeometry& g, T* workspace)
      : padded_out(RoundUp(g.out_channels, kOutBlock<T>)),
        data(workspace),
        abs_row_sums(workspace + g.kernel_height * g.kernel_width * g.in_channels * padded_out),
        row_sums(abs_row_sums + g.kernel_height * padded_out) {}

  // Packs `filter` [KH, KW, C, O] into `workspace`.
  PackedForwardFilter(const AdderConvGeometry& g, const T* filter, T* workspace)
      : PackedForwardFilter(g, workspace) {
    constexpr int64_t OB = kOutBlock<T>;
    const int64_t k = g.kernel_width * g.in_channels, o = g.out_channels;
    std::fill(workspace, workspace + ForwardWorkspaceSize<T>(g), T(0));
    for (int64_t i = 0; i < g.kernel_height; ++i) {
      for (int64_t kk = 0; kk < k; ++kk) {
        const T* src = filter + (i * k + kk) * o;
        for (int64_t oo = 0; oo < o; ++oo) {
          const int64_t b = oo / OB;
          data[((b * g.kernel_height + i) * k + kk) * OB + oo % OB] = src[oo];
          abs_row_sums[i * padded_out + oo] += std::abs(src[oo]);
          row_sums[i * padded_out + oo] += src[oo];
        }
      }
    }
  }
  const int64_t padded_out;
  T* const data;
  T* const abs_row_sums;
  T* const row_sums;
};

// Sum |x - f| for NP output pixels x one block of OB output channels; the
// first pixel's window starts `offset` into each row. acc is [NP][OB].
template <typename T, int NP, Formulation F>
inline void ForwardTile(const T* const* rows, int64_t kernel_height,
                        int64_t offset, int64_t window, int64_t pixel_step,
                        const T* filter, T* acc) {
  typedef typename Simd<T>::V V;
  constexpr int L = Simd<T>::kLanes;
  V a[NP][2];
  for (int p = 0; p < NP; ++p) {
    a[p][0] = Load(acc + p * 2 * L);
    a[p][1] = Load(acc + p * 2 * L + L);
  }
  // Accumulating through an FMA with an opaque 1 moves the add from the two
  // FP-add pipes (which also run the subtract) to the two FMA pipes.
  V one = Broadcast(T(1));
  ADDERNET_IN_REGISTER(one);
  for (int64_t i = 0; i < kernel_height; ++i, filter += window * 2 * L) {
    if (rows[i] == nullptr) continue;
    const T* x = rows[i] + offset;
    for (int64_t k = 0; k < window; ++k) {
      V f0 = Load(filter + k * 2 * L);
      V f1 = Load(filter + k * 2 * L + L);
      ADDERNET_IN_REGISTER(f0);
      ADDERNET_IN_REGISTER(f1);
      for (int p = 0; p < NP; ++p) {
        const V xb = Broadcast(x[p * pixel_step + k]);
        if constexpr (F == Formulation::kMaxIdentity) {
          a[p][0] += Max(xb, f0) * one;
          a[p][1] += Max(xb, f1) * one;
        } else {
          a[p][0] += Abs<T>(xb - f0) * one;
          a[p][1] += Abs<T>(xb - f1) * one;
        }
      }
    }
  }
  for (int p = 0; p < NP; ++p) {
    Store(acc + p * 2 * L, a[p][0]);
    Store(acc + p * 2 * L + L, a[p][1]);
  }
}

#if defined(__AVX512F__)
// One 64-byte vector per output block (OB = 16 floats or 8 doubles). TF's
// conv runs 64-byte vectors on AVX-512 machines; with 32-byte ones the
// forward tile issues twice the instructions for the same pairs.
template <typename T>
struct Wide;
#if defined(__AVX512DQ__)
// vrangeps/pd immediate for clamp(v, -1, 1) as range(v, 1): bits 1:0 = 2
// pick the operand of smaller magnitude, bits 3:2 = 0 give it v's sign. One
// instruction for max + min, with the same values for every v but NaN, which
// it turns into +-1 (measured on Zen 5): used only where f - x cannot be NaN.
constexpr int kClamp = 0x02;
#endif
template <>
struct Wide<float> {
  typedef __m512 V;
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V Broadcast(float x) { return _mm512_set1_ps(x); }
  static V AbsDiff(V a, V b) { return _mm512_abs_ps(_mm512_sub_ps(a, b)); }
  static V Max(V a, V b) { return _mm512_max_ps(a, b); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V MulAdd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V Zero() { return _mm512_setzero_ps(); }
  static V Sub(V a, V b) { return _mm512_sub_ps(a, b); }
  // clamp(v, -1, 1); a NaN v passes (see ClampUnit).
  static V Clamp(V v) {
    return _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(_mm512_set1_ps(-1.0f), v));
  }
  // The same for a v that is not NaN (see kClamp).
  static V FiniteClamp(V v) {
#if defined(__AVX512DQ__)
    return _mm512_range_ps(v, _mm512_set1_ps(1.0f), kClamp);
#else
    return Clamp(v);
#endif
  }
};
template <>
struct Wide<double> {
  typedef __m512d V;
  static V Load(const double* p) { return _mm512_loadu_pd(p); }
  static void Store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static V Broadcast(double x) { return _mm512_set1_pd(x); }
  static V AbsDiff(V a, V b) { return _mm512_abs_pd(_mm512_sub_pd(a, b)); }
  static V Max(V a, V b) { return _mm512_max_pd(a, b); }
  static V Add(V a, V b) { return _mm512_add_pd(a, b); }
  static V MulAdd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V Zero() { return _mm512_setzero_pd(); }
  static V Sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V Clamp(V v) {
    return _mm512_min_pd(_mm512_set1_pd(1.0), _mm512_max_pd(_mm512_set1_pd(-1.0), v));
  }
  static V FiniteClamp(V v) {
#if defined(__AVX512DQ__)
    return _mm512_range_pd(v, _mm512_set1_pd(1.0), kClamp);
#else
    return Clamp(v);
#endif
  }
};
static_assert(sizeof(Wide<float>::V) == kOutBlock<float> * sizeof(float), "one vector per OB");
static_assert(sizeof(Wide<double>::V) == kOutBlock<double> * sizeof(double), "one vector per OB");

// a + clamp(f - x, -1, 1) * d. kFinite: f and x are finite, so f - x is not
// NaN and the clamp may be the one-instruction FiniteClamp.
template <typename T, bool kFinite>
inline typename Wide<T>::V ClampedFma(typename Wide<T>::V f, typename Wide<T>::V x,
                                      typename Wide<T>::V d, typename Wide<T>::V a) {
  typedef Wide<T> W;
  const typename W::V t = W::Sub(f, x);
  return W::MulAdd(kFinite ? W::FiniteClamp(t) : W::Clamp(t), d, a);
}

// ForwardTile with one 64-byte vector per pixel: NP accumulators + the filter
// vector + the FMA's 1 + a broadcast + a temporary, 20 of the 32 registers at
// NP = 16.
template <typename T, int NP, Formulation F>
inline void ForwardTileWide(const T* const* rows, int64_t kernel_height,
                            int64_t offset, int64_t window, int64_t pixel_step,
                            const T* filter, T* acc) {
  typedef Wide<T> W;
  constexpr int64_t OB = kOutBlock<T>;
  typename W::V a[NP];
  for (int p = 0; p < NP; ++p) a[p] = W::Load(acc + p * OB);
  typename W::V one = W::Broadcast(T(1));
  asm("" : "+v"(one));  // opaque: see ForwardTile
  for (int64_t i = 0; i < kernel_height; ++i, filter += window * OB) {
    if (rows[i] == nullptr) continue;
    const T* x = rows[i] + offset;
    for (int64_t k = 0; k < window; ++k) {
      typename W::V f = W::Load(filter + k * OB);
      asm("" : "+v"(f));  // see ADDERNET_IN_REGISTER
      for (int p = 0; p < NP; ++p) {
        const typename W::V xb = W::Broadcast(x[p * pixel_step + k]);
        if constexpr (F == Formulation::kMaxIdentity) {
          a[p] = W::MulAdd(W::Max(xb, f), one, a[p]);
        } else {
          a[p] = W::MulAdd(W::AbsDiff(xb, f), one, a[p]);
        }
      }
    }
  }
  for (int p = 0; p < NP; ++p) W::Store(acc + p * OB, a[p]);
}
constexpr int kForwardPixelBlock = 16;
#else
constexpr int kForwardPixelBlock = kPixelBlock;
#endif

// The forward tile for `np` pixels: kForwardPixelBlock, kForwardPixelBlock / 2
// (AVX-512F only), kPixelBlock or 1. AdderConv2DForwardPacked picks np.
template <typename T, Formulation F>
inline void ForwardPixels(int np, const T* const* rows, int64_t kernel_height, int64_t offset,
                          int64_t window, int64_t pixel_step, const T* filter, T* acc) {
#if defined(__AVX512F__)
  if (np == kForwardPixelBlock) {
    ForwardTileWide<T, kForwardPixelBlock, F>(rows, kernel_height, offset, window, pixel_step,
                                           filter, acc);
  } else if (np == kForwardPixelBlock / 2) {
    ForwardTileWide<T, kForwardPixelBlock / 2, F>(rows, kernel_height, offset, window, pixel_step,
                                               filter, acc);
  } else if (np == kPixelBlock) {
    ForwardTileWide<T, kPixelBlock, F>(rows, kernel_height, offset, window, pixel_step, filter,
                                    acc);
  } else {
    ForwardTileWide<T, 1, F>(rows, kernel_height, offset, window, pixel_step, filter, acc);
  }
#else
  if (np == kPixelBlock) {
    ForwardTile<T, kPixelBlock, F>(rows, kernel_height, offset, window, pixel_step, filter, acc);
  } else {
    ForwardTile<T, 1, F>(rows, kernel_height, offset, window, pixel_step, filter, acc);
  }
#endif
}

// Sum of x over each output pixel's window, padding included as 0, into
// sums[ow]: rows summed into `columns` (KW*C-wide windows start every
// stride_w * C), each column reduced over C, then KW columns per pixel.
template <typename T>
inline void WindowSums(const AdderConvGeometry& g, const T* const* rows, T* columns, T* sums) {
  const int64_t c = g.in_channels;
  const int64_t width = PaddedRowWidth(g);
  std::fill(columns, columns + width * c, T(0));
  for (int64_t i = 0; i < g.kernel_height; ++i) {
    if (rows[i] == nullptr) continue;
    for (int64_t e = 0; e < width * c; ++e) columns[e] += rows[i][e];
  }
  for (int64_t w = 0; w < width; ++w) {
    T t = 0;
    for (int64_t e = 0; e < c; ++e) t += columns[w * c + e];
    columns[w] = t;  // w * c >= w: each column is read before it is overwritten
  }
  for (int64_t ow = 0; ow < g.out_width; ++ow) {
    T t = 0;
    for (int64_t j = 0; j < g.kernel_width; ++j) t += columns[ow * g.stride_w + j];
    sums[ow] = t;
  }
}

// A per-channel affine map, a residual and a clamp applied to the forward
// output as it is stored, y = min(max(scale[o] * y + shift[o] + residual, lo),
// hi): an inference BN, the block's shortcut ADD and ReLU (or ReLU6) folded
// into the layer, so that they cost no pass of their own.
template <typename T>
struct Epilogue {
  const T* scale;  // [out_channels]
  const T* shift;  // [out_channels]
  T lo, hi;        // -inf / +inf for no clamp
  const T* residual = nullptr;  // the output's layout, or null
};

// `epilogue` on `pixels` output pixels of `channels` at `output + offset`
// (the residual read at the same offset), while they are still in L1. Not
// inlined: in the tile's function its registers spilled the tile's (tests/ops'
// test_cpu_tiles_in_registers caught it).
template <typename T>
__attribute__((noinline)) void ApplyEpilogue(const Epilogue<T>& epilogue, int64_t channels,
                                             int64_t pixels, T* output, int64_t offset) {
  const T lo = epilogue.lo, hi = epilogue.hi;
  T* y = output + offset;
  const T* residual = epilogue.residual != nullptr ? epilogue.residual + offset : nullptr;
  for (int64_t p = 0; p < pixels; ++p, y += channels) {
    const T* r = residual != nullptr ? residual + p * channels : nullptr;
    for (int64_t o = 0; o < channels; ++o) {
      const T v = y[o] * epilogue.scale[o] + epilogue.shift[o] + (r != nullptr ? r[o] : T(0));
      y[o] = v < lo ? lo : (v > hi ? hi : v);
    }
  }
}

// The forward pass with a packed filter (PackedForwardFilter), and with
// `epilogue` applied to each output row when not null.
template <typename T, Formulation F = Formulation::kExact, typename ParallelFor>
void AdderConv2DForwardPacked(const AdderConvGeometry& g, const T* input,
                              const PackedForwardFilter<T>& packed, T* output,
                              const ParallelFor& parallel_for,
                              const Epilogue<T>* epilogue = nullptr) {
  constexpr int64_t OB = kOutBlock<T>;
  constexpr bool kMax = F == Formulation::kMaxIdentity;
  const int64_t window = g.kernel_width * g.in_channels;
  const int64_t pixel_step = g.stride_w * g.in_channels;
  const int64_t blocks = packed.padded_out / OB;
  const int64_t cost = g.out_width * packed.padded_out * g.kernel_height * window;

  parallel_for(g.batch * g.out_height, cost, [&](int64_t begin, int64_t end) {
    PaddedRows<T> padded(g);
    std::vector<T> acc(kForwardPixelBlock * OB);
    // Exact: the accumulators start at the |F| of rows in the padding, and
    // y = -acc. Max identity: they start at half of (that - sum F of the
    // other rows), and y = sum x - 2 acc.
    std::vector<T> init(packed.padded_out);
    std::vector<T> columns(kMax ? PaddedRowWidth(g) * g.in_channels : 0);
    std::vector<T> x_sums(kMax ? g.out_width : 0);
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n = unit / g.out_height, oh = unit % g.out_height;
      const T* const* rows = padded.Fill(input, n, oh);
      std::fill(init.begin(), init.end(), T(0));
      for (int64_t i = 0; i < g.kernel_height; ++i) {
        if (rows[i] != nullptr) continue;
        const T* s = packed.abs_row_sums + i * packed.padded_out;
        for (int64_t o = 0; o < packed.padded_out; ++o) init[o] += s[o];
      }
      if constexpr (kMax) {
        for (int64_t i = 0; i < g.kernel_height; ++i) {
          if (rows[i] == nullptr) continue;
          const T* s = packed.row_sums + i * packed.padded_out;
          for (int64_t o = 0; o < packed.padded_out; ++o) init[o] -= s[o];
        }
        for (int64_t o = 0; o < packed.padded_out; ++o) init[o] *= T(0.5);
        WindowSums<T>(g, rows, columns.data(), x_sums.data());
      }
      T* out_row = output + unit * g.out_width * g.out_channels;
      for (int64_t b = 0; b < blocks; ++b) {
        const T* f = packed.data + b * g.kernel_height * window * OB;
        const int64_t o0 = b * OB, on = std::min(OB, g.out_channels - o0);
        for (int64_t ow = 0; ow < g.out_width;) {
          const int64_t left = g.out_width - ow;
          // Only counts ForwardPixels has a tile for: the AVX2 build once
          // asked for kForwardPixelBlock / 2 = 2, ran a 1-pixel tile and
          // skipped the other pixel (tests/ops/test_kernel_targets.py).
#if defined(__AVX512F__)
          const int np = left >= kForwardPixelBlock       ? kForwardPixelBlock
                         : left >= kForwardPixelBlock / 2 ? kForwardPixelBlock / 2
                         : left >= kPixelBlock            ? kPixelBlock
                                                          : 1;
#else
          const int np = left >= kPixelBlock ? kPixelBlock : 1;
#endif
          for (int p = 0; p < np; ++p) {
            std::memcpy(acc.data() + p * OB, init.data() + o0, OB * sizeof(T));
          }
          const int64_t offset = ow * pixel_step;
          ForwardPixels<T, F>(np, rows, g.kernel_height, offset, window, pixel_step, f,
                              acc.data());
          for (int p = 0; p < np; ++p) {
            T* y = out_row + (ow + p) * g.out_channels + o0;
            const T* a = acc.data() + p * OB;
            if constexpr (kMax) {
              const T sx = x_sums[ow + p];
              for (int64_t o = 0; o < on; ++o) y[o] = sx - (a[o] + a[o]);
            } else {
              for (int64_t o = 0; o < on; ++o) y[o] = -a[o];
            }
          }
          ow += np;
        }
      }
      if (epilogue != nullptr) {
        ApplyEpilogue(*epilogue, g.out_channels, g.out_width, output, out_row - output);
      }
    }
  });
}

// The forward pass; `workspace` holds ForwardWorkspaceSize<T>(g) elements.
template <typename T, Formulation F = Formulation::kExact, typename ParallelFor>
void AdderConv2DForward(const AdderConvGeometry& g, const T* input,
                        const T* filter, T* workspace, T* output,
                        const ParallelFor& parallel_for) {
  const PackedForwardFilter<T> packed(g, filter, workspace);
  AdderConv2DForwardPacked<T, F>(g, input, packed, output, parallel_for);
}

// --------------------------------------------------------- backprop input

// Input channels per dX register block: one 64-byte vector with AVX-512F,
// one 32-byte vector otherwise.
#if defined(__AVX512F__)
template <typename T>
constexpr int64_t kInputLanes = 64 / sizeof(T);
#else
template <typename T>
constexpr int64_t kInputLanes = Simd<T>::kLanes;
#endif

// Filter transposed to [KH][KW][O][Cp] (input channels innermost, padded to
// kInputLanes), in caller-provided memory of BackpropInputWorkspaceSize elements.
template <typename T>
int64_t BackpropInputWorkspaceSize(const AdderConvGeometry& g) {
  return g.kernel_height * g.kernel_width * g.out_channels *
         RoundUp(g.in_channels, kInputLanes<T>);
}

template <typename T>
void TransposeFilterForInput(const AdderConvGeometry& g, const T* filter,
                             int64_t padded_c, T* t) {
  const int64_t c = g.in_channels, o = g.out_channels;
  const int64_t taps = g.kernel_height * g.kernel_width;
  std::fill(t, t + taps * o * padded_c, T(0));
  for (int64_t tap = 0; tap < taps; ++tap) {
    for (int64_t cc = 0; cc < c; ++cc) {
      for (int64_t oo = 0; oo < o; ++oo) {
        t[(tap * o + oo) * padded_c + cc] = filter[(tap * c + cc) * o + oo];
      }
    }
  }
}

// One kernel tap of a dX pixel block: the transposed filter at that tap and,
// per pixel, the output gradient row it meets there (a zero row outside).
template <typename T>
struct InputTap {
  const T* filter;
  const T* dy[kPixelBlock];
};

// dx[p] = sum over `num_taps` taps and o of clamp(f[o] - x[p], -1, 1) * dy[p][o]
// over one lane block, where pixel p's x[p] and dx[p] lie at x + p *
// pixel_step and dx + p * pixel_step. The accumulators and the pixels' inputs
// stay in registers across all taps (they are locals, never addressed). With 32
// vector registers even and odd o go to separate accumulators: with NP chains
// alone the FMA latency, not the arithmetic, bounds the loop. With 16 the
// second set would not fit (see kVectorRegisters): one set, each chain taking
// two FMAs per step.
template <typename T, int NP>
inline void InputBlock(const InputTap<T>* taps, int64_t num_taps, int64_t filter_step,
                       int64_t out_c, const T* x, T* dx, int64_t pixel_step) {
  typedef typename Simd<T>::V V;
  V a[NP], b[NP], xv[NP];
  for (int p = 0; p < NP; ++p) {
    a[p] = V{};
    b[p] = V{};
    xv[p] = Load(x + p * pixel_step);
  }
  for (int64_t k = 0; k < num_taps; ++k) {
    const T* filter = taps[k].filter;
    const T* const* dy = taps[k].dy;
    int64_t o = 0;
    for (; o + 1 < out_c; o += 2) {
      const V f0 = Load(filter + o * filter_step);
      const V f1 = Load(filter + (o + 1) * filter_step);
      for (int p = 0; p < NP; ++p) {
        a[p] += ClampUnit(f0 - xv[p]) * Broadcast(dy[p][o]);
        if constexpr (kVectorRegisters >= 32) {
          b[p] += ClampUnit(f1 - xv[p]) * Broadcast(dy[p][o + 1]);
        } else {
          a[p] += ClampUnit(f1 - xv[p]) * Broadcast(dy[p][o + 1]);
        }
      }
    }
    if (o < out_c) {
      const V f0 = Load(filter + o * filter_step);
      for (int p = 0; p < NP; ++p) a[p] += ClampUnit(f0 - xv[p]) * Broadcast(dy[p][o]);
    }
  }
  for (int p = 0; p < NP; ++p) Store(dx + p * pixel_step, a[p] + b[p]);
}

#if defined(__AVX512F__)
// InputBlock over one 64-byte lane block: 3·NP + 2 filter vectors + dY
// broadcasts + the clamp's constants, 20 of the 32 registers at NP = 4.
// kFinite: every f and x finite (see ClampedFma).
template <typename T, int NP, bool kFinite>
inline void InputBlockWide(const InputTap<T>* taps, int64_t num_taps, int64_t filter_step,
                           int64_t out_c, const T* x, T* dx, int64_t pixel_step) {
  typedef Wide<T> W;
  typename W::V a[NP], b[NP], xv[NP];
  for (int p = 0; p < NP; ++p) {
    a[p] = W::Zero();
    b[p] = W::Zero();
    xv[p] = W::Load(x + p * pixel_step);
  }
  for (int64_t k = 0; k < num_taps; ++k) {
    const T* filter = taps[k].filter;
    const T* const* dy = taps[k].dy;
    int64_t o = 0;
    for (; o + 1 < out_c; o += 2) {
      const typename W::V f0 = W::Load(filter + o * filter_step);
      const typename W::V f1 = W::Load(filter + (o + 1) * filter_step);
      for (int p = 0; p < NP; ++p) {
        a[p] = ClampedFma<T, kFinite>(f0, xv[p], W::Broadcast(dy[p][o]), a[p]);
        b[p] = ClampedFma<T, kFinite>(f1, xv[p], W::Broadcast(dy[p][o + 1]), b[p]);
      }
    }
    if (o < out_c) {
      const typename W::V f0 = W::Load(filter + o * filter_step);
      for (int p = 0; p < NP; ++p) {
        a[p] = ClampedFma<T, kFinite>(f0, xv[p], W::Broadcast(dy[p][o]), a[p]);
      }
    }
  }
  for (int p = 0; p < NP; ++p) W::Store(dx + p * pixel_step, W::Add(a[p], b[p]));
}
#endif

// InputBlock or InputBlockWide for NP pixels over one kInputLanes block.
template <typename T, int NP, bool kFinite>
inline void InputPixels(const InputTap<T>* taps, int64_t num_taps, int64_t filter_step,
                        int64_t out_c, const T* x, T* dx, int64_t pixel_step) {
#if defined(__AVX512F__)
  InputBlockWide<T, NP, kFinite>(taps, num_taps, filter_step, out_c, x, dx, pixel_step);
#else
  InputBlock<T, NP>(taps, num_taps, filter_step, out_c, x, dx, pixel_step);
#endif
}

// Whether none of p[0, n) is infinite or NaN (an exponent field of all ones),
// as integers so that the loop vectorizes.
template <typename T>
bool AllFinite(const T* p, int64_t n) {
  typedef typename std::conditional<sizeof(T) == 4, uint32_t, uint64_t>::type U;
  constexpr U kMagnitude = ~U(0) >> 1;
  constexpr U kInfinity = sizeof(T) == 4 ? U(0x7f800000u) : U(0x7ff0000000000000ull);
  U most = 0;
  for (int64_t e = 0; e < n; ++e) {
    U bits;
    std::memcpy(&bits, p + e, sizeof(bits));
    most = std::max<U>(most, bits & kMagnitude);
  }
  return most < kInfinity;
}

template <typename T, typename ParallelFor>
void AdderConv2DBackpropInput(const AdderConvGeometry& g, const T* input,
                              const T* filter, const T* out_backprop,
                              T* workspace, T* in_backprop,
                              const ParallelFor& parallel_for) {
  constexpr int64_t L = kInputLanes<T>;
  const int64_t c = g.in_channels, o = g.out_channels;
  const int64_t padded_c = RoundUp(c, L);
  TransposeFilterForInput(g, filter, padded_c, workspace);
  const T* ft = workspace;
  const std::vector<T> zeros(o, T(0));
  // With a non-finite f or x, f - x can be NaN: then a row runs one pixel per
  // block with the NaN-keeping clamp, so that a tap outside the output meets
  // no zero row (NaN * 0 would be NaN where the gradient has no term).
  const bool finite_filter =
      AllFinite(filter, g.kernel_height * g.kernel_width * c * o);
  const int64_t pixel_step = g.stride_w * padded_c;
  const int64_t cost = g.in_width * padded_c * g.kernel_height *
                       g.kernel_width * o / (g.stride_h * g.stride_w) + 1;

  parallel_for(g.batch * g.in_height, cost, [&](int64_t begin, int64_t end) {
    std::vector<T> x_row(g.in_width * padded_c, T(0));
    std::vector<T> dx_row(g.in_width * padded_c);
    std::vector<InputTap<T>> taps(g.kernel_height * g.kernel_width);
    for (int64_t unit = begin; unit < end; ++unit) {
      const int64_t n = unit / g.in_height, h = unit % g.in_height;
      const T* src = input + unit * g.in_width * c;
      for (int64_t w = 0; w < g.in_width; ++w) {
        std::memcpy(x_row.data() + w * padded_c, src + w * c, c * sizeof(T));
      }
      const bool finite = finite_filter && AllFinite(src, g.in_width * c);
      for (int64_t cb = 0; cb < padded_c; cb += L) {
        for (int64_t phase = 0; phase < std::min(g.stride_w, g.in_width);
             ++phase) {
          const int64_t count = (g.in_width - phase + g.stride_w - 1) / g.stride_w;
          for (int64_t t0 = 0; t0 < count;) {
            const int np = finite && count - t0 >= kPixelBlock ? kPixelBlock : 1;
            // The block's pixels, w = phase + (t0 + p) * stride_w, are
            // pixel_step apart in x_row and dx_row.
            const int64_t first = (phase + t0 * g.stride_w) * padded_c + cb;
            const T* x = x_row.data() + first;
            T* dx = dx_row.data() + first;
            int64_t num_taps = 0;
            for (int64_t i = 0; i < g.kernel_height; ++i) {
              const int64_t num = h + g.pad_top - i;
              if (num < 0 || num % g.stride_h != 0) continue;
              const int64_t oh = num / g.stride_h;
              if (oh >= g.out_height) continue;
              const T* dy_row = out_backprop + ((n * g.out_height + oh) * g.out_width) * o;
              for (int64_t j = 0; j < g.kernel_width; ++j) {
                const int64_t numw = phase + g.pad_left - j;
                if (((numw % g.stride_w) + g.stride_w) % g.stride_w != 0) continue;
                const int64_t base = t0 + numw / g.stride_w;
                InputTap<T>& tap = taps[num_taps];
                bool any = false;
                for (int p = 0; p < np; ++p) {
                  const int64_t ow = base + p;
                  const bool valid = ow >= 0 && ow < g.out_width;
                  tap.dy[p] = valid ? dy_row + ow * o : zeros.data();
                  any |= valid;
                }
                if (!any) continue;
                tap.filter = ft + ((i * g.kernel_width + j) * o) * padded_c + cb;
                ++num_taps;
              }
            }
            if (np == kPixelBlock) {
              InputPixels<T, kPixelBlock, true>(taps.data(), num_taps, padded_c, o, x, dx,
                                                pixel_step);
            } else if (finite) {
              InputPixels<T, 1, true>(taps.data(), num_taps, padded_c, o, x, dx, pixel_step);
            } else {
              InputPixels<T, 1, false>(taps.data(), num_taps, padded_c, o, x, dx, pixel_step);
            }
            t0 += np;
          }
        }
      }
      T* dst = in_backprop + unit * g.in_width * c;
      for (int64_t w = 0; w < g.in_width; ++w) {
        std::memcpy(dst + w * c, dx_row.data() + w * padded_c, c * sizeof(T));
      }
    }
  });
}

// -------------------------------------------------------- backprop filter

// For NK window offsets q, acc[q * acc_step + (0..OB)] += sum over `count`
// rows r and over ow of x[r][ow * step + q] * dy[r][ow][0..OB]; rows with a
// null x (vertical padding) contribute nothing.
template <typename T, int NK>
ADDERNET_TILE void FilterTile(const T* const* x, const T* const* dy, int64_t count,
                              int64_t step, int64_t dy_step, int64_t width, T* acc,
                              int64_t acc_step) {
  typedef typename Simd<T>::V V;
  constexpr int L = Simd<T>::kLanes;
  V a[NK][2];
  for (int q = 0; q < NK; ++q) {
    a[q][0] = Load(acc + q * acc_step);
    a[q][1] = Load(acc + q * acc_step + L);
  }
  for (int64_t r = 0; r < count; ++r) {
    if (x[r] == nullptr) continue;
    const T* xr = x[r];
    const T* dr = dy[r];
    for (int64_t ow = 0; ow < width; ++ow) {
      const V d0 = Load(dr + ow * dy_step);
      const V d1 = Load(dr + ow * dy_step + L);
      for (int q = 0; q < NK; ++q) {
        const V xb = Broadcast(xr[ow * step + q]);
        a[q][0] += xb * d0;
        a[q][1] += xb * d1;
      }
    }
  }
  for (int q = 0; q < NK; ++q) {
    Store(acc + q * acc_step, a[q][0]);
    Store(acc + q * acc_step + L, a[q][1]);
  }
}

#if defined(__AVX512F__)
// FilterTile with one 64-byte dY vector per output block: NK accumulators +
// the dY vector, the broadcasts folded into the FMAs.
template <typename T, int NK>
ADDERNET_TILE void FilterTileWide(const T* const* x, const T* const* dy, int64_t count,
                                  int64_t step, int64_t dy_step, int64_t width, T* acc,
                                  int64_t acc_step) {
  typedef Wide<T> W;
  typename W::V a[NK];
  for (int q = 0; q < NK; ++q) a[q] = W::Load(acc + q * acc_step);
  for (int64_t r = 0; r < count; ++r) {
    if (x[r] == nullptr) continue;
    const T* xr = x[r];
    const T* dr = dy[r];
    for (int64_t ow = 0; ow < width; ++ow, xr += step, dr += dy_step) {
      typename W::V d = W::Load(dr);
      asm("" : "+v"(d));  // see ADDERNET_IN_REGISTER
      for (int q = 0; q < NK; ++q) a[q] = W::MulAdd(W::Broadcast(xr[q]), d, a[q]);
    }
  }
  for (int q = 0; q < NK; ++q) W::Store(acc + q * acc_step, a[q]);
}
constexpr int kFilterOffsetBlock = 12;
#else
constexpr int kFilterOffsetBlock = kPixelBlock;
#endif

// The filter tile for `nk` window offsets (kFilterOffsetBlock, kPixelBlock or 1).
template <typename T>
inline void FilterOffsets(int nk, const T* const* x, const T* const* dy, int64_t count,
                          int64_t step, int64_t dy_step, int64_t width, T* acc,
                          int64_t acc_step) {
#if defined(__AVX512F__)
  if (nk == kFilterOffsetBlock) {
    FilterTileWide<T, kFilterOffsetBlock>(x, dy, count, step, dy_step, width, acc, acc_step);
  } else if (nk == kPixelBlock) {
    FilterTileWide<T, kPixelBlock>(x, dy, count, step, dy_step, width, acc, acc_step);
  } else {
    FilterTileWide<T, 1>(x, dy, count, step, dy_step, width, acc, acc_step);
  }
#else
  if (nk == kPixelBlock) {
    FilterTile<T, kPixelBlock>(x, dy, count, step, dy_step, width, acc, acc_step);
  } else {
    FilterTile<T, 1>(x, dy, count, step, dy_step, width, acc, acc_step);
  }
#endif
}

// Output rows the filter gradient folds into one register pass: long enough
// that the accumulator tile is loaded and stored rarely, short enough that
// the chunk's padded input rows stay in L2.
constexpr int64_t kFilterRowChunk = 16;

// Shards of the filter gradient: at most one per thread, and per shard a
// [KH][KW*C][Op] partial correlation plus [Op] sums of dY.
inline int64_t BackpropFilterShards(const AdderConvGeometry& g, int64_t num_threads) {
  return std::max<int64_t>(1, std::min(num_threads, g.batch * g.out_height));
}
template <typename T>
int64_t BackpropFilterWorkspaceSize(const AdderConvGeometry& g, int64_t shards) {
  const int64_t padded_out = RoundUp(g.out_channels, kOutBlock<T>);
  return shards * (g.kernel_height * g.kernel_width * g.in_channels + 1) * padded_out;
}

// dF = sum Xpad * dY - F * sum dY: a correlation of the padded input with dY
// (computed per shard into private partials in `workspace`, of
// BackpropFilterWorkspaceSize(g, shards) elements) minus a per-output-channel
// correction.
template <typename T, typename ParallelFor>
void AdderConv2DBackpropFilter(const AdderConvGeometry& g, const T* input,
                               const T* filter, const T* out_backprop,
                               int64_t shards, T* workspace,
                               T* filter_backprop,
                               const ParallelFor& parallel_for) {
  constexpr int64_t OB = kOutBlock<T>;
  const int64_t o = g.out_channels, padded_out = RoundUp(o, OB);
  const int64_t window = g.kernel_width * g.in_channels;
  const int64_t pixel_step = g.stride_w * g.in_channels;
  const int64_t rows = g.batch * g.out_height;
  const int64_t taps = g.kernel_height * window;
  const int64_t shard_size = taps * padded_out + padded_out;
  T* const partial = workspace;
  std::fill(partial, partial + shards * shard_size, T(0));
  const int64_t row_cost = g.out_width * taps * padded_out;

  parallel_for(shards, row_cost * ((rows + shards - 1) / shards),
               [&](int64_t begin, int64_t end) {
    std::vector<PaddedRows<T>> padded(kFilterRowChunk, PaddedRows<T>(g));
    const bool copy_dy = o % OB != 0;
    std::vector<T> dy_rows(copy_dy ? kFilterRowChunk * g.out_width * padded_out : 0, T(0));
    // [KH][chunk] input-row and dY-row pointers of the current chunk.
    std::vector<const T*> x_ptrs(g.kernel_height * kFilterRowChunk);
    std::vector<const T*> dy_ptrs(kFilterRowChunk);
    for (int64_t s = begin; s < end; ++s) {
      T* acc = partial + s * shard_size;
      T* dy_sum = acc + taps * padded_out;
      const int64_t last = rows * (s + 1) / shards;
      for (int64_t first = rows * s / shards; first < last; first += kFilterRowChunk) {
        const int64_t count = std::min(kFilterRowChunk, last - first);
        for (int64_t r = 0; r < count; ++r) {
          const int64_t unit = first + r;
          const T* const* x_rows =
              padded[r].Fill(input, unit / g.out_height, unit % g.out_height);
          for (int64_t i = 0; i < g.kernel_height; ++i) {
            x_ptrs[i * kFilterRowChunk + r] = x_rows[i];
          }
          const T* dy = out_backprop + unit * g.out_width * o;
          if (copy_dy) {
            T* dst = dy_rows.data() + r * g.out_width * padded_out;
            for (int64_t ow = 0; ow < g.out_width; ++ow) {
              std::memcpy(dst + ow * padded_out, dy + ow * o, o * sizeof(T));
            }
            dy = dst;
          }
          dy_ptrs[r] = dy;
          for (int64_t ow = 0; ow < g.out_width; ++ow) {
            for (int64_t oo = 0; oo < padded_out; ++oo) dy_sum[oo] += dy[ow * padded_out + oo];
          }
        }
        for (int64_t i = 0; i < g.kernel_height; ++i) {
          const T* const* xs = x_ptrs.data() + i * kFilterRowChunk;
          for (int64_t b = 0; b < padded_out; b += OB) {
            const T* const* dys = dy_ptrs.data();
            T* a = acc + i * window * padded_out + b;
            for (int64_t k = 0; k < window;) {
              // Window offset k: every row pointer moves by k.
              const T* xk[kFilterRowChunk];
              const T* dk[kFilterRowChunk];
              for (int64_t r = 0; r < count; ++r) {
                xk[r] = xs[r] == nullptr ? nullptr : xs[r] + k;
                dk[r] = dys[r] + b;
              }
              const int nk = window - k >= kFilterOffsetBlock ? kFilterOffsetBlock
                             : window - k >= kPixelBlock         ? kPixelBlock
                                                                 : 1;
              FilterOffsets<T>(nk, xk, dk, count, pixel_step, padded_out, g.out_width,
                               a + k * padded_out, padded_out);
              k += nk;
            }
          }
        }
      }
    }
  });

  // Reduce the shards and subtract F * sum dY.
  std::vector<T> dy_total(padded_out, T(0));
  for (int64_t s = 0; s < shards; ++s) {
    const T* d = partial + s * shard_size + taps * padded_out;
    for (int64_t oo = 0; oo < padded_out; ++oo) dy_total[oo] += d[oo];
  }
  parallel_for(taps, shards * o + 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t oo = 0; oo < o; ++oo) {
        T sum = T(0);
        for (int64_t s = 0; s < shards; ++s) {
          sum += partial[s * shard_size + t * padded_out + oo];
        }
        filter_backprop[t * o + oo] = sum - filter[t * o + oo] * dy_total[oo];
      }
    }
  });
}

}  // namespace cpu
}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_CPU_H_
