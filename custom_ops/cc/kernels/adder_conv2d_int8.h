// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// The int8 adder convolution (issue 16, the LiteRT op's int8 path):
//
//   acc[n, oh, ow, o] = sum_{i, j, c} |xq[n, oh*sh + i - pt, ow*sw + j - pl, c] - wq[i, j, c, o]|
//   y[n, oh, ow, o]   = clamp(round(bias[o] - multiplier[o] * acc [+ rm * r[n, oh, ow, o]]),
//                             lo, hi)
//
// (r: an optional int8 residual of y's shape, the block's shortcut whose ADD
// was folded in, scaled by rm).
// with x and the filter int8 on one grid (one scale and zero point; a padded
// position holds the zero point, real 0). On bytes |a - b| is what x86's
// (v)psadbw computes: it sums each 8-byte group of a vector into one 64-bit
// lane. Other targets run the same arithmetic in a scalar loop.
//
// Layout: each 64-bit lane is one output channel. A vector holds kLanes
// output channels' filter bytes for 8 input channels (lane l: w[i, j, c..c+8,
// o + l]), and the 8 input bytes x[.., c..c+8] are broadcast to every lane,
// so one psadbw adds 8 pairs to each of kLanes output channels' sums and the
// accumulator's lanes are the channels' sums: no reduction across lanes. Each
// thread copies the input rows its output rows read into a padded uint8
// buffer (x + 128: int8 differences are uint8 differences after the shift),
// channels rounded up to 8 with zeros, as the filter's are, so they add
// |0 - 0|. A tile of kPixels output pixels by kGroups vectors of channels
// keeps kPixels * kGroups accumulators in registers; per step it loads
// kPixels broadcasts and kGroups filter vectors for kPixels * kGroups psadbw.
// The sums are requantized a vector at a time (AVX-512: 8 channels, AVX2:
// 4). A per-channel multiplier and the clamp [lo, hi] let the layer's BN (and
// a ReLU: lo = the output's zero point) be folded into the requantization,
// and the residual the block's ADD after it (lite.int8).
//
// ARM (not built here): NEON's vabdq_u8 + vpadalq_u8 take psadbw's place
// (16 pairs per pair of instructions into 16-bit lanes, widened every few
// hundred steps), with the same layout and two output channels per vector.

#ifndef ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_INT8_H_
#define ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_INT8_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_geometry.h"

// ADDERNET_INT8_PORTABLE forces the scalar path (for its tests on x86).
#if !defined(ADDERNET_INT8_PORTABLE) && (defined(__AVX512BW__) || defined(__AVX2__) || \
                                         defined(__SSE2__))
#define ADDERNET_INT8_SIMD 1
#include <immintrin.h>
#endif

namespace addernet {
namespace int8 {

// The residual's term rm * residual[l] of one output, 0 without a residual.
inline float ResidualTerm(const int8_t* residual, int64_t l, float rm) {
  return residual != nullptr ? rm * static_cast<float>(residual[l]) : 0.0f;
}

// The requantization of one output channel's sum; lo <= hi in [-128, 127];
// `added`: the residual's term (ResidualTerm).
inline int8_t Requantize(float bias, float multiplier, int lo, int hi, int64_t acc,
                         float added) {
  const float v = std::nearbyint(bias - multiplier * static_cast<float>(acc) + added);
  return static_cast<int8_t>(std::min<float>(hi, std::max<float>(lo, v)));
}

#if defined(ADDERNET_INT8_SIMD) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__)
constexpr int kBytes = 64;
using Vec = __m512i;
inline Vec Broadcast8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm512_set1_epi64(v);
}
inline Vec Load(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline Vec Sad(Vec a, Vec b) { return _mm512_sad_epu8(a, b); }
inline Vec Add(Vec a, Vec b) { return _mm512_add_epi64(a, b); }
inline Vec Zero() { return _mm512_setzero_si512(); }
inline void Lanes(Vec v, int64_t* out) { _mm512_storeu_si512(out, v); }
// All 8 lanes' outputs: bias - multiplier * acc (+ rm * residual, when
// `residual` is not null), rounded, clamped to [lo, hi].
inline void StoreRequantized(Vec acc, const float* bias, const float* multiplier, int lo, int hi,
                             const int8_t* residual, float rm, int8_t* out) {
  __m256 v = _mm256_fnmadd_ps(_mm256_loadu_ps(multiplier), _mm512_cvtepi64_ps(acc),
                              _mm256_loadu_ps(bias));
  if (residual != nullptr) {
    const __m256 r = _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(residual))));
    v = _mm256_fmadd_ps(_mm256_set1_ps(rm), r, v);
  }
  const __m256i q = _mm256_min_epi32(
      _mm256_set1_epi32(hi), _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_cvtps_epi32(v)));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm256_cvtsepi32_epi8(q));
}
constexpr int kPixels = 4, kGroups = 2;
constexpr const char* kTarget = "avx512bw vpsadbw (64 byte pairs per instruction)";
#elif defined(ADDERNET_INT8_SIMD) && defined(__AVX2__) && defined(__FMA__)
constexpr int kBytes = 32;
using Vec = __m256i;
inline Vec Broadcast8(const uint8_t* p) {
  int64_t v;
  std::memcpy(&v, p, 8);
  return _mm256_set1_epi64x(v);
}
inline Vec Load(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline Vec Sad(Vec a, Vec b) { return _mm256_sad_epu8(a, b); }
inline Vec Add(Vec a, Vec b) { return _mm256_add_epi64(a, b); }
inline Vec Zero() { return _mm256_setzero_si256(); }
inline void Lanes(Vec v, int64_t* out) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v);
}
inline void StoreRequantized(Vec acc, const float* bias, const float* multiplier, int lo, int hi,
                             const int8_t* residual, float rm, int8_t* out) {
  // The sums are below 2^31: their low 32-bit halves, gathered.
  const __m128i sums = _mm256_castsi256_si128(
      _mm256_permutevar8x32_epi32(acc, _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
  __m128 v = _mm_fnmadd_ps(_mm_loadu_ps(multiplier), _mm_cvtepi32_ps(sums), _mm_loadu_ps(bias));
  if (residual != nullptr) {
    int32_t bytes;
    std::memcpy(&bytes, residual, 4);
    const __m128 r = _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(bytes)));
    v = _mm_fmadd_ps(_mm_set1_ps(rm), r, v);
  }
  const __m128i q = _mm_min_epi32(_mm_set1_epi32(hi),
                                  _mm_max_epi32(_mm_set1_epi32(lo), _mm_cvtps_epi32(v)));
  const __m128i q16 = _mm_packs_epi32(q, _mm_setzero_si128());
  const int32_t q8 = _mm_cvtsi128_si32(_mm_packs_epi16(q16, q16));
  std::memcpy(out, &q8, 4);
}
constexpr int kPixels = 4, kGroups = 2;
constexpr const char* kTarget = "avx2 vpsadbw (32 byte pairs per instruction)";
#elif defined(ADDERNET_INT8_SIMD)
constexpr int kBytes = 16;
using Vec = __m128i;
inline Vec Broadcast8(const uint8_t* p) {
  return _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)),
                            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
}
inline Vec Load(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
inline Vec Sad(Vec a, Vec b) { return _mm_sad_epu8(a, b); }
inline Vec Add(Vec a, Vec b) { return _mm_add_epi64(a, b); }
inline Vec Zero() { return _mm_setzero_si128(); }
inline void Lanes(Vec v, int64_t* out) { _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v); }
inline void StoreRequantized(Vec acc, const float* bias, const float* multiplier, int lo, int hi,
                             const int8_t* residual, float rm, int8_t* out) {
  int64_t sums[2];
  Lanes(acc, sums);
  for (int l = 0; l < 2; ++l) {
    out[l] = Requantize(bias[l], multiplier[l], lo, hi, sums[l], ResidualTerm(residual, l, rm));
  }
}
constexpr int kPixels = 4, kGroups = 2;
constexpr const char* kTarget = "sse2 psadbw (16 byte pairs per instruction)";
#else
// Portable: two 8-byte lanes summed in scalar loops.
constexpr int kBytes = 16;
struct Vec {
  uint8_t b[16];
  int64_t sum[2];
};
inline Vec Broadcast8(const uint8_t* p) {
  Vec v{};
  std::memcpy(v.b, p, 8);
  std::memcpy(v.b + 8, p, 8);
  return v;
}
inline Vec Load(const uint8_t* p) {
  Vec v{};
  std::memcpy(v.b, p, 16);
  return v;
}
inline Vec Sad(const Vec& a, const Vec& b) {
  Vec r{};
  for (int l = 0; l < 2; ++l) {
    for (int i = 0; i < 8; ++i) r.sum[l] += std::abs(int{a.b[8 * l + i]} - int{b.b[8 * l + i]});
  }
  return r;
}
inline Vec Add(Vec a, const Vec& b) {
  a.sum[0] += b.sum[0];
  a.sum[1] += b.sum[1];
  return a;
}
inline Vec Zero() { return Vec{}; }
inline void Lanes(const Vec& v, int64_t* out) { out[0] = v.sum[0], out[1] = v.sum[1]; }
inline void StoreRequantized(const Vec& acc, const float* bias, const float* multiplier, int lo,
                             int hi, const int8_t* residual, float rm, int8_t* out) {
  for (int l = 0; l < 2; ++l) {
    out[l] = Requantize(bias[l], multiplier[l], lo, hi, acc.sum[l],
                        ResidualTerm(residual, l, rm));
  }
}
constexpr int kPixels = 1, kGroups = 2;
constexpr const char* kTarget = "portable (scalar byte loop)";
#endif

// Output channels per vector: one per 8-byte lane.
constexpr int kLanes = kBytes / 8;

// Input channels rounded up to a multiple of 8.
inline int64_t PaddedChannels(const AdderConvGeometry& g) { return (g.in_channels + 7) / 8 * 8; }

// Vectors of output channels (the last one may be partly empty).
inline int64_t OutputGroups(const AdderConvGeometry& g) {
  return (g.out_channels + kLanes - 1) / kLanes;
}

// Bytes of the packed filter: [group][KH][KW][C/8][kBytes].
inline int64_t PackedFilterBytes(const AdderConvGeometry& g) {
  return OutputGroups(g) * g.kernel_height * g.kernel_width * PaddedChannels(g) * kLanes;
}

// Padded input height and width: what the output's windows cover.
inline int64_t PaddedHeight(const AdderConvGeometry& g) {
  return (g.out_height - 1) * g.stride_h + g.kernel_height;
}
inline int64_t PaddedWidth(const AdderConvGeometry& g) {
  return (g.out_width - 1) * g.stride_w + g.kernel_width;
}

// filter int8 [KH, KW, C, O] -> packed (PackedFilterBytes): lane l of group
// q's vector for tap (i, j) and channels c..c+8 holds w[i, j, c..c+8, q*kLanes + l] + 128.
inline void PackFilter(const AdderConvGeometry& g, const int8_t* filter, uint8_t* packed) {
  const int64_t c8 = PaddedChannels(g), taps = g.kernel_height * g.kernel_width;
  std::memset(packed, 0, static_cast<size_t>(PackedFilterBytes(g)));
  for (int64_t q = 0; q < OutputGroups(g); ++q) {
    for (int64_t t = 0; t < taps; ++t) {
      for (int64_t c = 0; c < g.in_channels; ++c) {
        uint8_t* dst = packed + ((q * taps + t) * (c8 / 8) + c / 8) * kBytes + c % 8;
        for (int64_t l = 0; l < kLanes && q * kLanes + l < g.out_channels; ++l) {
          dst[8 * l] = static_cast<uint8_t>(
              filter[(t * g.in_channels + c) * g.out_channels + q * kLanes + l] ^ 0x80);
        }
      }
    }
  }
}

// x int8 [N, H, W, C] -> padded uint8 rows of [N, PaddedHeight, PaddedWidth,
// PaddedChannels]: x + 128, spatial pads x_zero_point + 128, extra channels 0;
// rows [begin, end) of the N * PaddedHeight, row `begin` at `dst`.
inline void PadInputRows(const AdderConvGeometry& g, const int8_t* x, int x_zero_point,
                         int64_t begin, int64_t end, uint8_t* dst) {
  const int64_t hp = PaddedHeight(g), wp = PaddedWidth(g), c = g.in_channels;
  const int64_t c8 = PaddedChannels(g);
  const uint8_t pad = static_cast<uint8_t>(x_zero_point ^ 0x80);
  for (int64_t unit = begin; unit < end; ++unit) {
    const int64_t n = unit / hp, ih = unit % hp - g.pad_top;
    for (int64_t w = 0; w < wp; ++w, dst += c8) {
      const int64_t iw = w - g.pad_left;
      if (ih < 0 || ih >= g.in_height || iw < 0 || iw >= g.in_width) {
        std::memset(dst, pad, static_cast<size_t>(c));
      } else {
        const int8_t* src = x + ((n * g.in_height + ih) * g.in_width + iw) * c;
        for (int64_t k = 0; k < c; ++k) dst[k] = static_cast<uint8_t>(src[k] ^ 0x80);
      }
      std::memset(dst + c, 0, static_cast<size_t>(c8 - c));
    }
  }
}

// How the sums become int8 outputs: y = clamp(round(bias[o] - multiplier[o] * acc), lo, hi).
// With the layer's BN folded in (y = scale * (A + center) + shift, then maybe a ReLU):
// multiplier[o] = scale[o] s_x / s_y, bias[o] = z_y + (scale[o] (center[o] - clipped[o]) +
// shift[o]) / s_y, and lo = z_y under a ReLU (lite.int8.quantize_adder).
// With a residual r (int8, y's layout; the block's shortcut, its ADD folded
// in): y = clamp(round(bias[o] - multiplier[o] * acc + residual_multiplier * r), lo, hi).
struct Requantization {
  const float* multiplier;  // [O]
  const float* bias;        // [O]
  int lo = -128, hi = 127;  // -128 <= lo <= hi <= 127
  const int8_t* residual = nullptr;  // [N, OH, OW, O] or null
  float residual_multiplier = 0.0f;
};

// One tile: P output pixels (x windows at `x[p]`, stride `pixel_step` bytes
// apart) by G vectors of output channels from group `q`.
// `residual`: rq.residual at `out`'s offset, or null.
template <int P, int G, bool kResidual>
inline void Tile(const AdderConvGeometry& g, const uint8_t* x, int64_t pixel_step,
                 const uint8_t* filter, int64_t q, const Requantization& rq,
                 const int8_t* residual, int8_t* out) {
  const int64_t c8 = PaddedChannels(g), row = PaddedWidth(g) * c8;
  const int64_t steps = g.kernel_width * (c8 / 8);
  const int64_t group_bytes = g.kernel_height * steps * kBytes;
  Vec acc[P][G];
  for (int p = 0; p < P; ++p) {
    for (int k = 0; k < G; ++k) acc[p][k] = Zero();
  }
  const uint8_t* f = filter + q * group_bytes;
  for (int64_t i = 0; i < g.kernel_height; ++i) {
    const uint8_t* xi = x + i * row;
    // Within one window row the taps' channels are contiguous: KW * C8 bytes.
    for (int64_t s = 0; s < steps; ++s, f += kBytes) {
      Vec w[G];
      for (int k = 0; k < G; ++k) w[k] = Load(f + k * group_bytes);
      for (int p = 0; p < P; ++p) {
        const Vec xv = Broadcast8(xi + p * pixel_step + 8 * s);
        for (int k = 0; k < G; ++k) acc[p][k] = Add(acc[p][k], Sad(xv, w[k]));
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    for (int k = 0; k < G; ++k) {
      const int64_t o = (q + k) * kLanes;
      int8_t* y = out + p * g.out_channels + o;
      const int8_t* r = kResidual ? residual + p * g.out_channels + o : nullptr;
      if (o + kLanes <= g.out_channels) {
        StoreRequantized(acc[p][k], rq.bias + o, rq.multiplier + o, rq.lo, rq.hi, r,
                         rq.residual_multiplier, y);
      } else {
        int64_t sums[kLanes];
        Lanes(acc[p][k], sums);
        for (int64_t l = 0; o + l < g.out_channels; ++l) {
          y[l] = Requantize(rq.bias[o + l], rq.multiplier[o + l], rq.lo, rq.hi, sums[l],
                            ResidualTerm(r, l, rq.residual_multiplier));
        }
      }
    }
  }
}

// AdderConv2DForwardInt8 with (kResidual) or without rq.residual: a test per
// store left the layer 2-4% slower (int8_sad), the template does not.
template <bool kResidual, typename ParallelFor>
void ForwardInt8(const AdderConvGeometry& g, const int8_t* input, int x_zero_point,
                 const uint8_t* packed, const Requantization& rq, int8_t* y,
                 const ParallelFor& parallel_for) {
  const int64_t hp = PaddedHeight(g), wp = PaddedWidth(g), c8 = PaddedChannels(g);
  const int64_t groups = OutputGroups(g), pixel_step = g.stride_w * c8;
  const int64_t cost = g.out_width * g.out_channels * g.kernel_height * g.kernel_width * c8;
  parallel_for(g.batch * g.out_height, cost, [&](int64_t begin, int64_t end) {
    // The padded input rows this chunk's output rows read, one image at a
    // time, in this thread's buffer: padded where they are read, no pass of
    // their own, and no serial copy before the threads start.
    thread_local std::vector<uint8_t> rows;
    for (int64_t unit = begin; unit < end;) {
      const int64_t n = unit / g.out_height, oh_begin = unit % g.out_height;
      const int64_t oh_end = std::min(g.out_height, oh_begin + (end - unit));
      const int64_t first = oh_begin * g.stride_h;
      const int64_t count = (oh_end - 1 - oh_begin) * g.stride_h + g.kernel_height;
      rows.resize(static_cast<size_t>(count * wp * c8));
      PadInputRows(g, input, x_zero_point, n * hp + first, n * hp + first + count, rows.data());
      for (int64_t oh = oh_begin; oh < oh_end; ++oh, ++unit) {
        const uint8_t* x_row = rows.data() + (oh * g.stride_h - first) * wp * c8;
        const int64_t row_offset = unit * g.out_width * g.out_channels;
        int8_t* y_row = y + row_offset;
        const int8_t* r_row = kResidual ? rq.residual + row_offset : nullptr;
        int64_t ow = 0;
        for (; ow + kPixels <= g.out_width; ow += kPixels) {
          const uint8_t* x = x_row + ow * pixel_step;
          int8_t* out = y_row + ow * g.out_channels;
          const int8_t* r = kResidual ? r_row + ow * g.out_channels : nullptr;
          int64_t q = 0;
          for (; q + kGroups <= groups; q += kGroups) {
            Tile<kPixels, kGroups, kResidual>(g, x, pixel_step, packed, q, rq, r, out);
          }
          for (; q < groups; ++q) {
            Tile<kPixels, 1, kResidual>(g, x, pixel_step, packed, q, rq, r, out);
          }
        }
        for (; ow < g.out_width; ++ow) {
          const uint8_t* x = x_row + ow * pixel_step;
          int8_t* out = y_row + ow * g.out_channels;
          const int8_t* r = kResidual ? r_row + ow * g.out_channels : nullptr;
          int64_t q = 0;
          for (; q + kGroups <= groups; q += kGroups) {
            Tile<1, kGroups, kResidual>(g, x, pixel_step, packed, q, rq, r, out);
          }
          for (; q < groups; ++q) Tile<1, 1, kResidual>(g, x, pixel_step, packed, q, rq, r, out);
        }
      }
    }
  });
}

// y int8 [N, OH, OW, O] from x int8 [N, H, W, C] (x_zero_point: the pads'
// value) and the packed filter (PackFilter). ParallelFor(units, cost,
// fn(begin, end)), as the float kernels take; fn may run on several threads.
template <typename ParallelFor>
void AdderConv2DForwardInt8(const AdderConvGeometry& g, const int8_t* x, int x_zero_point,
                            const uint8_t* packed, const Requantization& rq, int8_t* y,
                            const ParallelFor& parallel_for) {
  if (rq.residual != nullptr) {
    ForwardInt8<true>(g, x, x_zero_point, packed, rq, y, parallel_for);
  } else {
    ForwardInt8<false>(g, x, x_zero_point, packed, rq, y, parallel_for);
  }
}

}  // namespace int8
}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_CC_KERNELS_ADDER_CONV2D_INT8_H_
