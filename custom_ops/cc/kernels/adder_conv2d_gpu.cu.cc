// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// CUDA kernels of the adder convolution and their launchers
// (adder_conv2d_gpu.h). Compiled by nvcc as CUDA (`-x cu`); no TF headers.
//
// All three ops are GEMM-shaped over the im2col view A[m, k] of the padded
// input (m = (n, oh, ow) output position, k = (kh, kw, c) window offset,
// padded positions read 0):
//   forward  Y[m, o]  = -sum_k |A[m, k] - F[k, o]|
//   dF       dF[k, o] = sum_m A[m, k] dY[m, o] - F[k, o] sum_m dY[m, o]
//   dX       dX[p, c] = sum_{kh, kw, o} clamp(F[kh, kw, c, o] - X[p, c], -1, 1) dY[m(p, kh, kw), o]
// and share one tiling: a block computes a BM x BN output tile from BK-deep
// slices staged in shared memory; each thread owns TM x TN outputs spread
// with strides (threads of a warp touch consecutive columns, so shared-memory
// reads and global stores are conflict-free and coalesced). dX gathers over
// the windows that cover each input position instead of scattering, so no
// kernel uses atomics and results are deterministic; its rows are grouped by
// stride phase, so each block visits only the kernel offsets that meet them.
//
// Index arithmetic is 32-bit (the OpKernel rejects larger tensors, see
// WithinKernelLimits); element offsets into global memory are 64-bit.

#include <algorithm>
#include <cstdint>

#include "custom_ops/cc/kernels/adder_conv2d_gpu.h"

#ifdef ADDERNET_CUDA_EMULATION
// custom_ops/emulation/cuda_emulation.h runs blocks on the CPU.
#define ADDERNET_LAUNCH(kernel, grid, block, stream, ...) \
  ::cuda_emulation::Launch(grid, block, [&] { kernel(__VA_ARGS__); })
#else
#define ADDERNET_LAUNCH(kernel, grid, block, stream, ...) \
  kernel<<<grid, block, 0, stream>>>(__VA_ARGS__)
#endif

namespace addernet {
namespace gpu {
namespace {

constexpr int kThreads = 256;

// Tile shapes, picked per launch by the size of the output's column axis.
template <int BM_, int BN_, int BK_, int TM_, int TN_>
struct Tiling {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int kThreadsN = BN / TN;  // threads along a row of the tile
  static constexpr int kThreadsM = BM / TM;
  static_assert(kThreadsM * kThreadsN == kThreads, "one thread per TM x TN outputs");
  static_assert(kThreads % BK == 0 && kThreads % BM == 0 && BM * BK % kThreads == 0,
                "the staging loops give each thread whole rows or columns");
};
using Narrow = Tiling<256, 16, 8, 8, 2>;   // columns <= 16
using Medium = Tiling<128, 32, 16, 4, 4>;  // columns <= 32
using Wide = Tiling<64, 64, 16, 4, 4>;     // columns <= 64, or few rows
using Large = Tiling<128, 128, 8, 8, 8>;   // many rows and columns

// The 32-bit view of AdderConvGeometry the kernels index with.
struct Geom {
  int n, h, w, c, kh, kw, o, oh, ow, sh, sw, pt, pl;
  int rows;  // n * oh * ow
  int depth;  // kh * kw * c
};

Geom ToGeom(const AdderConvGeometry& g) {
  Geom s;
  s.n = int(g.batch), s.h = int(g.in_height), s.w = int(g.in_width), s.c = int(g.in_channels);
  s.kh = int(g.kernel_height), s.kw = int(g.kernel_width), s.o = int(g.out_channels);
  s.oh = int(g.out_height), s.ow = int(g.out_width);
  s.sh = int(g.stride_h), s.sw = int(g.stride_w), s.pt = int(g.pad_top), s.pl = int(g.pad_left);
  s.rows = s.n * s.oh * s.ow;
  s.depth = s.kh * s.kw * s.c;
  return s;
}

int CeilDiv(int64_t a, int64_t b) { return int((a + b - 1) / b); }

__device__ __forceinline__ float AbsDiff(float a, float b) { return fabsf(a - b); }
__device__ __forceinline__ double AbsDiff(double a, double b) { return fabs(a - b); }
__device__ __forceinline__ float HardTanh(float v) { return fminf(fmaxf(v, -1.0f), 1.0f); }
__device__ __forceinline__ double HardTanh(double v) { return fmin(fmax(v, -1.0), 1.0); }

// Where output row m = (n, oh, ow) reads the input: the image's first element
// and the top-left corner of its window (possibly in the padding).
struct WindowOrigin {
  int64_t image;  // offset of X[n, 0, 0, 0]
  int ih, iw;     // oh * sh - pt, ow * sw - pl
  bool valid;     // m < rows
};

__device__ __forceinline__ WindowOrigin OriginOf(const Geom& g, int m) {
  WindowOrigin r;
  r.valid = m < g.rows;
  const int mm = r.valid ? m : 0;
  const int ow = mm % g.ow;
  const int t = mm / g.ow;
  const int oh = t % g.oh;
  const int n = t / g.oh;
  r.image = int64_t(n) * g.h * g.w * g.c;
  r.ih = oh * g.sh - g.pt;
  r.iw = ow * g.sw - g.pl;
  return r;
}

// A[m, k] for window origin `r` and depth k = (kh, kw, c) given as its parts.
template <typename T>
__device__ __forceinline__ T Patch(const Geom& g, const T* __restrict__ x,
                                   const WindowOrigin& r, int kh, int kw, int c,
                                   bool k_valid) {
  const int ih = r.ih + kh, iw = r.iw + kw;
  const bool inside = r.valid && k_valid && ih >= 0 && ih < g.h && iw >= 0 && iw < g.w;
  return inside ? x[r.image + (int64_t(ih) * g.w + iw) * g.c + c] : T(0);
}

// The per-thread register tile: this thread's outputs are rows ty + i * kThreadsM
// and columns tx + j * kThreadsN of the block's BM x BN tile.
template <typename L, typename T>
__device__ __forceinline__ void ZeroTile(T (&acc)[L::TM][L::TN]) {
#pragma unroll
  for (int i = 0; i < L::TM; ++i) {
#pragma unroll
    for (int j = 0; j < L::TN; ++j) acc[i][j] = T(0);
  }
}

// acc[i][j] += term(a, b, i, j) over one staged BK-deep slice, a from the
// row operand a_tile[kk][row], b from the column operand b_tile[kk][column].
template <typename L, typename T, int kRowStride, int kColStride, typename Term>
__device__ __forceinline__ void AccumulateSlice(const T (&a_tile)[L::BK][kRowStride],
                                                const T (&b_tile)[L::BK][kColStride], int ty,
                                                int tx, T (&acc)[L::TM][L::TN], Term term) {
  // Unrolled in float. In double, unrolling the slice keeps TM + TN staged
  // values per step live across steps and the input gradient spills (up to
  // 252 bytes, ptxas -v); each step already has TM x TN independent terms.
#pragma unroll(sizeof(T) == 8 ? 1 : L::BK)
  for (int kk = 0; kk < L::BK; ++kk) {
    T a[L::TM], b[L::TN];
#pragma unroll
    for (int i = 0; i < L::TM; ++i) a[i] = a_tile[kk][ty + i * L::kThreadsM];
#pragma unroll
    for (int j = 0; j < L::TN; ++j) b[j] = b_tile[kk][tx + j * L::kThreadsN];
#pragma unroll
    for (int i = 0; i < L::TM; ++i) {
#pragma unroll
      for (int j = 0; j < L::TN; ++j) acc[i][j] += term(a[i], b[j], i, j);
    }
  }
}

// Where this thread's rows of a tile starting at row0 begin in a row-major
// rows x columns output: row * columns, or -1 past the last row.
template <typename L>
__device__ __forceinline__ void DenseRows(int row0, int rows, int columns, int ty,
                                          int64_t (&out_row)[L::TM]) {
#pragma unroll
  for (int i = 0; i < L::TM; ++i) {
    const int row = row0 + ty + i * L::kThreadsM;
    out_row[i] = row < rows ? int64_t(row) * columns : -1;
  }
}

// out[out_row[i] + column] = value(acc[i][j]) for this thread's outputs, the
// tile's columns starting at col0; rows with out_row[i] < 0 are skipped.
template <typename L, typename T, typename Value>
__device__ __forceinline__ void StoreTile(const T (&acc)[L::TM][L::TN],
                                          const int64_t (&out_row)[L::TM], int col0,
                                          int columns, int tx, T* __restrict__ out,
                                          Value value) {
#pragma unroll
  for (int i = 0; i < L::TM; ++i) {
#pragma unroll
    for (int j = 0; j < L::TN; ++j) {
      const int column = col0 + tx + j * L::kThreadsN;
      if (out_row[i] >= 0 && column < columns) out[out_row[i] + column] = value(acc[i][j]);
    }
  }
}

// ---------------------------------------------------------------- forward

// Grid (row tiles, column tiles); rows m over n*oh*ow, columns o.
template <typename T, typename L>
__global__ void __launch_bounds__(kThreads)
    ForwardKernel(Geom g, const T* __restrict__ x, const T* __restrict__ f,
                  T* __restrict__ y) {
  constexpr int kRowsPerThread = L::BM * L::BK / kThreads;
  __shared__ T a_tile[L::BK][L::BM + 1];  // +1: the k-fastest stores hit distinct banks
  __shared__ T f_tile[L::BK][L::BN];
  const int tid = threadIdx.x;
  const int tx = tid % L::kThreadsN, ty = tid / L::kThreadsN;
  const int m0 = blockIdx.x * L::BM, o0 = blockIdx.y * L::BN;

  // This thread stages a_tile[load_k][load_m + r * kThreads / BK] for each r.
  const int load_k = tid % L::BK;
  const int load_m = tid / L::BK;
  WindowOrigin origin[kRowsPerThread];
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    origin[r] = OriginOf(g, m0 + load_m + r * (kThreads / L::BK));
  }

  T acc[L::TM][L::TN];
  ZeroTile<L>(acc);

  for (int k0 = 0; k0 < g.depth; k0 += L::BK) {
    const int k = k0 + load_k;
    const int c = k % g.c, kw = (k / g.c) % g.kw, kh = k / (g.c * g.kw);
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      a_tile[load_k][load_m + r * (kThreads / L::BK)] =
          Patch(g, x, origin[r], kh, kw, c, k < g.depth);
    }
    for (int e = tid; e < L::BK * L::BN; e += kThreads) {
      const int kk = e / L::BN, nn = e % L::BN;
      const bool inside = k0 + kk < g.depth && o0 + nn < g.o;
      f_tile[kk][nn] = inside ? f[int64_t(k0 + kk) * g.o + o0 + nn] : T(0);
    }
    __syncthreads();
    AccumulateSlice<L>(a_tile, f_tile, ty, tx, acc,
                       [](T a, T f_value, int, int) { return AbsDiff(a, f_value); });
    __syncthreads();
  }
  int64_t out_row[L::TM];
  DenseRows<L>(m0, g.rows, g.o, ty, out_row);
  StoreTile<L>(acc, out_row, o0, g.o, tx, y, [](T sum) { return -sum; });
}

// ---------------------------------------------------------- input gradient

// Input positions grouped by stride phase. Phase (a, b), a < min(sh, h) and
// b < min(sw, w), holds the positions ih = a + i * sh, iw = b + j * sw. Such a
// position meets the kernel offsets kh ≡ a + pt, kw ≡ b + pl (mod stride)
// and no others, at output row oh = (a + pt) / sh + i - (kh - kh_first) / sh
// (likewise for ow), so a block of one phase visits only the (kh, kw) that
// contribute: 1 / (sh * sw) of them on average.
struct Phase {
  int a, b;                     // first input row and column of the phase
  int rows_h, rows_w, rows;     // positions along h, along w, and n * rows_h * rows_w
  int kh_first, kw_first;       // first kernel offsets met
  int oh_base, ow_base;         // output row / column met by i = 0, kh = kh_first
};

__device__ __forceinline__ Phase PhaseOf(const Geom& g, int phase) {
  Phase s;
  const int phases_w = min(g.sw, g.w);
  s.a = phase / phases_w;
  s.b = phase % phases_w;
  s.rows_h = (g.h - s.a + g.sh - 1) / g.sh;
  s.rows_w = (g.w - s.b + g.sw - 1) / g.sw;
  s.rows = g.n * s.rows_h * s.rows_w;
  s.kh_first = (s.a + g.pt) % g.sh;
  s.kw_first = (s.b + g.pl) % g.sw;
  s.oh_base = (s.a + g.pt) / g.sh;
  s.ow_base = (s.b + g.pl) / g.sw;
  return s;
}

// Row q of a phase as (n, i, j); n = -1 past the phase's rows.
struct PhaseRow {
  int n, i, j;
};

__device__ __forceinline__ PhaseRow PhaseRowOf(const Phase& s, int q) {
  PhaseRow r;
  const int qq = q < s.rows ? q : 0;
  r.j = qq % s.rows_w;
  r.i = (qq / s.rows_w) % s.rows_h;
  r.n = q < s.rows ? qq / (s.rows_w * s.rows_h) : -1;
  return r;
}

// Offset of X[n, a + i * sh, b + j * sw, 0] for a row of phase s, or -1.
__device__ __forceinline__ int64_t PositionOffset(const Geom& g, const Phase& s,
                                                  const PhaseRow& r) {
  if (r.n < 0) return -1;
  const int ih = s.a + r.i * g.sh, iw = s.b + r.j * g.sw;
  return ((int64_t(r.n) * g.h + ih) * g.w + iw) * g.c;
}

// Grid (phases * tiles_per_phase, column tiles); rows are the positions of
// one phase, columns c.
template <typename T, typename L>
__global__ void __launch_bounds__(kThreads)
    BackpropInputKernel(Geom g, int tiles_per_phase, const T* __restrict__ x,
                        const T* __restrict__ f, const T* __restrict__ dy,
                        T* __restrict__ dx) {
  constexpr int kRowsPerThread = L::BM * L::BK / kThreads;
  __shared__ T dy_tile[L::BK][L::BM + 1];
  __shared__ T f_tile[L::BK][L::BN + 1];
  const Phase s = PhaseOf(g, blockIdx.x / tiles_per_phase);
  const int q0 = (blockIdx.x % tiles_per_phase) * L::BM, c0 = blockIdx.y * L::BN;
  if (q0 >= s.rows) return;  // the whole block: no barrier is skipped
  const int tid = threadIdx.x;
  const int tx = tid % L::kThreadsN, ty = tid / L::kThreadsN;

  int64_t out_row[L::TM];
  T xv[L::TM][L::TN], acc[L::TM][L::TN];
#pragma unroll
  for (int i = 0; i < L::TM; ++i) {
    out_row[i] = PositionOffset(g, s, PhaseRowOf(s, q0 + ty + i * L::kThreadsM));
#pragma unroll
    for (int j = 0; j < L::TN; ++j) {
      const int c = c0 + tx + j * L::kThreadsN;
      xv[i][j] = out_row[i] >= 0 && c < g.c ? x[out_row[i] + c] : T(0);
      acc[i][j] = T(0);
    }
  }

  // This thread stages dy_tile[load_o][load_q + r * kThreads / BK].
  const int load_o = tid % L::BK;
  const int load_q = tid / L::BK;
  PhaseRow staged[kRowsPerThread];
#pragma unroll
  for (int r = 0; r < kRowsPerThread; ++r) {
    staged[r] = PhaseRowOf(s, q0 + load_q + r * (kThreads / L::BK));
  }

  for (int kh = s.kh_first, th = 0; kh < g.kh; kh += g.sh, ++th) {
    for (int kw = s.kw_first, tw = 0; kw < g.kw; kw += g.sw, ++tw) {
      // Offset of dY[n, oh, ow, 0] met by each staged row, or -1.
      int64_t dy_row[kRowsPerThread];
#pragma unroll
      for (int r = 0; r < kRowsPerThread; ++r) {
        const int oh = s.oh_base + staged[r].i - th, ow = s.ow_base + staged[r].j - tw;
        const bool meets = staged[r].n >= 0 && oh >= 0 && ow >= 0 && oh < g.oh && ow < g.ow;
        dy_row[r] = meets ? ((int64_t(staged[r].n) * g.oh + oh) * g.ow + ow) * g.o : -1;
      }
      const int64_t f_base = (int64_t(kh) * g.kw + kw) * g.c * g.o;
      for (int o0 = 0; o0 < g.o; o0 += L::BK) {
        const int o = o0 + load_o;
#pragma unroll
        for (int r = 0; r < kRowsPerThread; ++r) {
          dy_tile[load_o][load_q + r * (kThreads / L::BK)] =
              dy_row[r] >= 0 && o < g.o ? dy[dy_row[r] + o] : T(0);
        }
        // F[kh, kw, c, o] is contiguous in o: consecutive threads take consecutive o.
        for (int e = tid; e < L::BK * L::BN; e += kThreads) {
          const int oo = e % L::BK, cc = e / L::BK;
          const bool inside = o0 + oo < g.o && c0 + cc < g.c;
          f_tile[oo][cc] = inside ? f[f_base + int64_t(c0 + cc) * g.o + o0 + oo] : T(0);
        }
        __syncthreads();
        AccumulateSlice<L>(dy_tile, f_tile, ty, tx, acc, [&](T d, T f_value, int i, int j) {
          return HardTanh(f_value - xv[i][j]) * d;
        });
        __syncthreads();
      }
    }
  }
  // Positions no kernel offset meets (kh_first >= kh) store zeros.
  StoreTile<L>(acc, out_row, c0, g.c, tx, dx, [](T sum) { return sum; });
}

// --------------------------------------------------------- filter gradient

// Rows of A (output positions) handled by one split of the filter gradient.
int FilterSplitRows(const Geom& g, int splits) {
  const int per_split = CeilDiv(g.rows, splits);
  return CeilDiv(per_split, 16) * 16;  // a multiple of every tiling's BK
}

// Grid (depth tiles, column tiles, splits): partial[split][k][o] =
// sum over the split's rows m of A[m, k] dY[m, o].
template <typename T, typename L>
__global__ void __launch_bounds__(kThreads)
    FilterProductKernel(Geom g, int split_rows, const T* __restrict__ x,
                        const T* __restrict__ dy, T* __restrict__ partial) {
  static_assert(kThreads % L::BM == 0, "each thread stages one fixed depth column");
  constexpr int kRowsPerThread = L::BM * L::BK / kThreads;
  __shared__ T a_tile[L::BK][L::BM];
  __shared__ T dy_tile[L::BK][L::BN];
  const int tid = threadIdx.x;
  const int tx = tid % L::kThreadsN, ty = tid / L::kThreadsN;
  const int k0 = blockIdx.x * L::BM, o0 = blockIdx.y * L::BN;
  const int m_begin = blockIdx.z * split_rows;
  const int m_end = min(m_begin + split_rows, g.rows);

  // This thread stages a_tile[load_m + r * kThreads / BM][load_k].
  const int load_k = tid % L::BM;
  const int load_m = tid / L::BM;
  const int k = k0 + load_k;
  const bool k_valid = k < g.depth;
  const int c = k % g.c, kw = (k / g.c) % g.kw, kh = k / (g.c * g.kw);

  T acc[L::TM][L::TN];
  ZeroTile<L>(acc);

  for (int m0 = m_begin; m0 < m_end; m0 += L::BK) {
#pragma unroll
    for (int r = 0; r < kRowsPerThread; ++r) {
      const int mm = load_m + r * (kThreads / L::BM);
      const int m = m0 + mm;
      WindowOrigin origin = OriginOf(g, m);
      origin.valid = origin.valid && m < m_end;
      a_tile[mm][load_k] = Patch(g, x, origin, kh, kw, c, k_valid);
    }
    for (int e = tid; e < L::BK * L::BN; e += kThreads) {
      const int mm = e / L::BN, nn = e % L::BN;
      const bool inside = m0 + mm < m_end && o0 + nn < g.o;
      dy_tile[mm][nn] = inside ? dy[int64_t(m0 + mm) * g.o + o0 + nn] : T(0);
    }
    __syncthreads();
    AccumulateSlice<L>(a_tile, dy_tile, ty, tx, acc, [](T a, T d, int, int) { return a * d; });
    __syncthreads();
  }
  int64_t out_row[L::TM];
  DenseRows<L>(k0, g.depth, g.o, ty, out_row);
  StoreTile<L>(acc, out_row, o0, g.o, tx, partial + int64_t(blockIdx.z) * g.depth * g.o,
               [](T sum) { return sum; });
}

// Grid (column tiles of 32, splits), block (32, 8): colsum[split][o] = sum of
// dY[m, o] over the split's rows, reduced in shared memory in a fixed order.
template <typename T>
__global__ void __launch_bounds__(kThreads)
    ColumnSumKernel(Geom g, int split_rows, const T* __restrict__ dy, T* __restrict__ colsum) {
  __shared__ T part[8][32];
  const int o = blockIdx.x * 32 + threadIdx.x;
  const int m_begin = blockIdx.y * split_rows;
  const int m_end = min(m_begin + split_rows, g.rows);
  T sum = T(0);
  if (o < g.o) {
    for (int m = m_begin + threadIdx.y; m < m_end; m += 8) sum += dy[int64_t(m) * g.o + o];
  }
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && o < g.o) {
    T total = T(0);
#pragma unroll
    for (int r = 0; r < 8; ++r) total += part[r][threadIdx.x];
    colsum[int64_t(blockIdx.y) * g.o + o] = total;
  }
}

// dF[k, o] = sum_s partial[s][k, o] - F[k, o] * sum_s colsum[s][o].
template <typename T>
__global__ void __launch_bounds__(kThreads)
    FilterReduceKernel(Geom g, int splits, const T* __restrict__ f,
                       const T* __restrict__ partial, const T* __restrict__ colsum,
                       T* __restrict__ df) {
  const int64_t size = int64_t(g.depth) * g.o;
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < size;
       e += int64_t(gridDim.x) * blockDim.x) {
    const int o = int(e % g.o);
    T product = T(0), dy_sum = T(0);
    for (int s = 0; s < splits; ++s) {
      product += partial[int64_t(s) * size + e];
      dy_sum += colsum[int64_t(s) * g.o + o];
    }
    df[e] = product - f[e] * dy_sum;
  }
}

// ---------------------------------------------------------------- dispatch

// Enough blocks to fill a large GPU a couple of times over (132 SMs on H100).
constexpr int64_t kTargetBlocks = 264;

// Picks the tiling for `rows` x `cols` outputs and calls fn(Tiling{}). The
// 8 x 8 per-thread tile is float-only: in double, the input gradient's two
// 8 x 8 register arrays spill.
template <typename T, typename Fn>
int WithTiling(int64_t rows, int64_t cols, Fn&& fn) {
  if (cols <= 16) return fn(Narrow{});
  if (cols <= 32) return fn(Medium{});
  if constexpr (sizeof(T) == 4) {
    if (cols >= 128 &&
        int64_t(CeilDiv(rows, Large::BM)) * CeilDiv(cols, Large::BN) >= kTargetBlocks) {
      return fn(Large{});
    }
  }
  return fn(Wide{});
}

int LastError() { return int(cudaGetLastError()); }

int FilterSplits(const Geom& g) {
  const int64_t tiles = int64_t(CeilDiv(g.depth, Wide::BM)) * CeilDiv(g.o, Wide::BN);
  const int64_t wanted = (kTargetBlocks + tiles - 1) / tiles;
  const int64_t most = std::max<int64_t>(1, g.rows / 256);  // >= 256 rows per split
  return int(std::max<int64_t>(1, std::min<int64_t>({wanted, most, 1024})));
}

}  // namespace

template <typename T>
int AdderConv2DForward(const AdderConvGeometry& geometry, const T* input, const T* filter,
                       T* output, cudaStream_t stream) {
  const Geom g = ToGeom(geometry);
  if (g.rows == 0 || g.o == 0) return 0;
  return WithTiling<T>(g.rows, g.o, [&](auto tiling) {
    using L = decltype(tiling);
    const dim3 grid(CeilDiv(g.rows, L::BM), CeilDiv(g.o, L::BN));
    auto kernel = ForwardKernel<T, L>;
    ADDERNET_LAUNCH(kernel, grid, dim3(kThreads), stream, g, input, filter, output);
    return LastError();
  });
}

template <typename T>
int AdderConv2DBackpropInput(const AdderConvGeometry& geometry, const T* input,
                             const T* filter, const T* out_backprop, T* input_backprop,
                             cudaStream_t stream) {
  const Geom g = ToGeom(geometry);
  const int64_t positions = int64_t(g.n) * g.h * g.w;
  if (positions == 0 || g.c == 0) return 0;
  // Phase (0, 0) has the most positions; WithinKernelLimits bounds phases * tiles.
  const int64_t phases = int64_t(std::min(g.sh, g.h)) * std::min(g.sw, g.w);
  const int64_t most_rows = int64_t(g.n) * CeilDiv(g.h, g.sh) * CeilDiv(g.w, g.sw);
  return WithTiling<T>(most_rows, g.c, [&](auto tiling) {
    using L = decltype(tiling);
    const int tiles_per_phase = CeilDiv(most_rows, L::BM);
    const dim3 grid(unsigned(phases * tiles_per_phase), CeilDiv(g.c, L::BN));
    auto kernel = BackpropInputKernel<T, L>;
    ADDERNET_LAUNCH(kernel, grid, dim3(kThreads), stream, g, tiles_per_phase, input, filter,
                    out_backprop, input_backprop);
    return LastError();
  });
}

template <typename T>
int64_t BackpropFilterWorkspaceSize(const AdderConvGeometry& geometry) {
  const Geom g = ToGeom(geometry);
  return int64_t(FilterSplits(g)) * (int64_t(g.depth) * g.o + g.o);
}

template <typename T>
int AdderConv2DBackpropFilter(const AdderConvGeometry& geometry, const T* input,
                              const T* filter, const T* out_backprop, T* workspace,
                              T* filter_backprop, cudaStream_t stream) {
  const Geom g = ToGeom(geometry);
  if (int64_t(g.depth) * g.o == 0) return 0;
  const int splits = FilterSplits(g);
  const int split_rows = FilterSplitRows(g, splits);
  T* partial = workspace;
  T* colsum = workspace + int64_t(splits) * g.depth * g.o;
  int status = WithTiling<T>(g.depth, g.o, [&](auto tiling) {
    using L = decltype(tiling);
    const dim3 grid(CeilDiv(g.depth, L::BM), CeilDiv(g.o, L::BN), splits);
    auto kernel = FilterProductKernel<T, L>;
    ADDERNET_LAUNCH(kernel, grid, dim3(kThreads), stream, g, split_rows, input, out_backprop,
                    partial);
    return LastError();
  });
  if (status != 0) return status;
  auto column_sum = ColumnSumKernel<T>;
  ADDERNET_LAUNCH(column_sum, dim3(CeilDiv(g.o, 32), splits), dim3(32, 8), stream, g,
                  split_rows, out_backprop, colsum);
  if ((status = LastError()) != 0) return status;
  const int64_t size = int64_t(g.depth) * g.o;
  const int blocks = int(std::min<int64_t>(CeilDiv(size, kThreads), 4096));
  auto reduce = FilterReduceKernel<T>;
  ADDERNET_LAUNCH(reduce, dim3(blocks), dim3(kThreads), stream, g, splits, filter, partial,
                  colsum, filter_backprop);
  return LastError();
}

#define ADDERNET_INSTANTIATE(T)                                                          \
  template int AdderConv2DForward<T>(const AdderConvGeometry&, const T*, const T*, T*,   \
                                     cudaStream_t);                                      \
  template int AdderConv2DBackpropInput<T>(const AdderConvGeometry&, const T*, const T*, \
                                           const T*, T*, cudaStream_t);                  \
  template int64_t BackpropFilterWorkspaceSize<T>(const AdderConvGeometry&);             \
  template int AdderConv2DBackpropFilter<T>(const AdderConvGeometry&, const T*, const T*, \
                                            const T*, T*, T*, cudaStream_t);
ADDERNET_INSTANTIATE(float)
ADDERNET_INSTANTIATE(double)
#undef ADDERNET_INSTANTIATE

}  // namespace gpu
}  // namespace addernet
