// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// Investigation for an int8 adder layer (issue 16): how fast is sum |x - w| on
// bytes with (v)psadbw, against the float forward kernel the ops use
// (adder_conv2d_cpu.h), on one thread, for one 3x3 SAME layer?
//
//   int8_sad H W C O BATCH REPEATS   (built and run by `python -m benchmarks.int8_sad`)
//
// The int8 layer: x and w as uint8 on one scale and zero point (the pad
// value is the zero point, so a padded position adds |zp - w|, as the float
// kernel adds |0 - w|). Layout: each output channel's filter row is KW*C
// bytes padded to a whole number of vectors with zeros, and the input's
// window row is loaded with the same length under a mask (zeros past KW*C),
// so the padding adds |0 - 0| = 0. psadbw sums 8 byte pairs into one 64-bit
// lane; a 4-output-channel tile keeps one accumulator per channel and
// reduces each once per pixel. The integer result is checked against a
// scalar loop before timing. Prints one line of tab-separated `key=value` pairs.

#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "custom_ops/cc/kernels/adder_conv2d_cpu.h"

namespace {

#if defined(__AVX512BW__)
constexpr int kBytes = 64;
using V = __m512i;
inline V LoadMasked(const uint8_t* p, int n) {
  return _mm512_maskz_loadu_epi8(n >= 64 ? ~0ULL : ((1ULL << n) - 1), p);
}
inline V Load(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline V Sad(V a, V b) { return _mm512_sad_epu8(a, b); }
inline V Add(V a, V b) { return _mm512_add_epi64(a, b); }
inline V Zero() { return _mm512_setzero_si512(); }
inline int64_t Reduce(V v) { return _mm512_reduce_add_epi64(v); }
const char* kIsa = "avx512bw vpsadbw (64 byte pairs per instruction)";
#else
constexpr int kBytes = 32;
using V = __m256i;
inline V LoadMasked(const uint8_t* p, int n) {
  alignas(32) uint8_t tmp[32] = {0};
  for (int i = 0; i < std::min(n, 32); ++i) tmp[i] = p[i];
  return _mm256_load_si256(reinterpret_cast<const __m256i*>(tmp));
}
inline V Load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline V Sad(V a, V b) { return _mm256_sad_epu8(a, b); }
inline V Add(V a, V b) { return _mm256_add_epi64(a, b); }
inline V Zero() { return _mm256_setzero_si256(); }
inline int64_t Reduce(V v) {
  alignas(32) int64_t t[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
  return t[0] + t[1] + t[2] + t[3];
}
const char* kIsa = "avx2 vpsadbw (32 byte pairs per instruction)";
#endif

constexpr int kMaxWindowVectors = 96;

struct Layer {
  int n, h, w, c, o, k = 3;
  int row_bytes() const { return k * c; }
  int row_vectors() const { return (row_bytes() + kBytes - 1) / kBytes; }
};

// x: padded [N, H+2, W+2, C] uint8; f: [O][KH][row_vectors * kBytes] uint8.
// y[n, oh, ow, o] = sum |x - w| (int32).
void SadForward(const Layer& L, const uint8_t* x, const uint8_t* f, int32_t* y) {
  const int wp = L.w + 2, rb = L.row_bytes(), rv = L.row_vectors();
  const int64_t f_row = static_cast<int64_t>(rv) * kBytes, f_out = f_row * L.k;
  V window[kMaxWindowVectors];
  for (int n = 0; n < L.n; ++n) {
    for (int oh = 0; oh < L.h; ++oh) {
      for (int ow = 0; ow < L.w; ++ow) {
        for (int i = 0; i < L.k; ++i) {
          const uint8_t* row = x + ((static_cast<int64_t>(n) * (L.h + 2) + oh + i) * wp + ow) * L.c;
          for (int v = 0; v < rv; ++v) window[i * rv + v] = LoadMasked(row + v * kBytes, rb - v * kBytes);
        }
        int32_t* out = y + ((static_cast<int64_t>(n) * L.h + oh) * L.w + ow) * L.o;
        int o = 0;
        for (; o + 4 <= L.o; o += 4) {
          V a0 = Zero(), a1 = Zero(), a2 = Zero(), a3 = Zero();
          const uint8_t* f0 = f + o * f_out;
          for (int j = 0; j < L.k * rv; ++j) {
            const V xv = window[j];
            a0 = Add(a0, Sad(xv, Load(f0 + j * kBytes)));
            a1 = Add(a1, Sad(xv, Load(f0 + f_out + j * kBytes)));
            a2 = Add(a2, Sad(xv, Load(f0 + 2 * f_out + j * kBytes)));
            a3 = Add(a3, Sad(xv, Load(f0 + 3 * f_out + j * kBytes)));
          }
          out[o] = static_cast<int32_t>(Reduce(a0));
          out[o + 1] = static_cast<int32_t>(Reduce(a1));
          out[o + 2] = static_cast<int32_t>(Reduce(a2));
          out[o + 3] = static_cast<int32_t>(Reduce(a3));
        }
        for (; o < L.o; ++o) {
          V a = Zero();
          for (int j = 0; j < L.k * rv; ++j) a = Add(a, Sad(window[j], Load(f + o * f_out + j * kBytes)));
          out[o] = static_cast<int32_t>(Reduce(a));
        }
      }
    }
  }
}

template <typename Fn>
double BestSeconds(int repeats, const Fn& fn) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    std::fprintf(stderr, "usage: int8_sad H W C O BATCH REPEATS\n");
    return 2;
  }
  Layer L{std::atoi(argv[5]), std::atoi(argv[1]), std::atoi(argv[2]), std::atoi(argv[3]),
          std::atoi(argv[4])};
  const int repeats = std::atoi(argv[6]);
  if (L.n < 1 || L.h < 1 || L.w < 1 || L.c < 1 || L.o < 1 || repeats < 1 ||
      L.k * L.row_vectors() > kMaxWindowVectors) {
    std::fprintf(stderr, "int8_sad: sizes must be >= 1 and 3*C bytes fit %d vectors\n",
                 kMaxWindowVectors / 3);
    return 2;
  }
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> byte(0, 255);
  const int zp = 128, wp = L.w + 2;
  std::vector<uint8_t> x(static_cast<size_t>(L.n) * (L.h + 2) * wp * L.c, zp);
  for (int n = 0; n < L.n; ++n)
    for (int h = 0; h < L.h; ++h)
      for (int w = 0; w < L.w; ++w)
        for (int c = 0; c < L.c; ++c)
          x[((static_cast<size_t>(n) * (L.h + 2) + h + 1) * wp + w + 1) * L.c + c] = byte(rng);
  std::vector<uint8_t> wraw(static_cast<size_t>(L.k) * L.k * L.c * L.o);  // [KH, KW, C, O]
  for (auto& v : wraw) v = byte(rng);
  const int rv = L.row_vectors();
  std::vector<uint8_t> f(static_cast<size_t>(L.o) * L.k * rv * kBytes, 0);
  for (int o = 0; o < L.o; ++o)
    for (int i = 0; i < L.k; ++i)
      for (int jc = 0; jc < L.k * L.c; ++jc)
        f[(static_cast<size_t>(o) * L.k + i) * rv * kBytes + jc] = wraw[(i * L.k * L.c + jc) * L.o + o];
  std::vector<int32_t> y(static_cast<size_t>(L.n) * L.h * L.w * L.o);
  SadForward(L, x.data(), f.data(), y.data());
  // Scalar check of every output.
  for (int n = 0; n < L.n; ++n)
    for (int oh = 0; oh < L.h; ++oh)
      for (int ow = 0; ow < L.w; ++ow)
        for (int o = 0; o < L.o; ++o) {
          int64_t s = 0;
          for (int i = 0; i < L.k; ++i)
            for (int j = 0; j < L.k; ++j)
              for (int c = 0; c < L.c; ++c)
                s += std::abs(int(x[((static_cast<size_t>(n) * (L.h + 2) + oh + i) * wp + ow + j) * L.c + c]) -
                              int(wraw[((i * L.k + j) * L.c + c) * L.o + o]));
          if (s != y[((static_cast<size_t>(n) * L.h + oh) * L.w + ow) * L.o + o]) {
            std::fprintf(stderr, "mismatch at n=%d oh=%d ow=%d o=%d: %lld vs %d\n", n, oh, ow, o,
                         static_cast<long long>(s), y[((static_cast<size_t>(n) * L.h + oh) * L.w + ow) * L.o + o]);
            return 1;
          }
        }
  // The float kernel on the same layer (one thread), SAME padding.
  addernet::AdderConvGeometry g{L.n, L.h, L.w, L.c, L.k, L.k, L.o, L.h, L.w, 1, 1, 1, 1};
  std::vector<float> xf(static_cast<size_t>(L.n) * L.h * L.w * L.c), ff(wraw.size()), yf(y.size());
  for (auto& v : xf) v = byte(rng) / 255.0f;
  for (auto& v : ff) v = byte(rng) / 255.0f;
  std::vector<float> packed(addernet::cpu::ForwardWorkspaceSize<float>(g));
  const addernet::cpu::PackedForwardFilter<float> pf(g, ff.data(), packed.data());
  auto inline_for = [](int64_t units, int64_t, const auto& fn) { fn(int64_t{0}, units); };
  const double t_float = BestSeconds(repeats, [&] {
    addernet::cpu::AdderConv2DForwardPacked<float>(g, xf.data(), pf, yf.data(), inline_for);
  });
  const double t_max = BestSeconds(repeats, [&] {
    addernet::cpu::AdderConv2DForwardPacked<float, addernet::cpu::Formulation::kMaxIdentity>(
        g, xf.data(), pf, yf.data(), inline_for);
  });
  const double t_sad = BestSeconds(repeats, [&] { SadForward(L, x.data(), f.data(), y.data()); });
  const double pairs = double(L.n) * L.h * L.w * L.o * L.k * L.k * L.c;
  std::printf("isa=%s\tfloat_kernel=%s\tpairs=%.0f\tfloat_s=%.9f\tmaxid_s=%.9f\tint8_s=%.9f\t"
              "float_over_int8=%.3f\tmaxid_over_int8=%.3f\tchecked=1\n",
              kIsa, addernet::cpu::KernelTarget(), pairs, t_float, t_max, t_sad,
              t_float / t_sad, t_max / t_sad);
  return 0;
}
