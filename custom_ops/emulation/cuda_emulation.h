// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// Runs the project's CUDA kernels on the CPU, for testing their index
// arithmetic, tiling and synchronization where there is no GPU. Force-included
// (g++ -include) before a .cu.cc compiled as C++ with ADDERNET_CUDA_EMULATION.
//
// A launch runs its blocks one after another. A block's threads are fibers
// (ucontext) on the calling thread: each runs until it reaches __syncthreads
// or returns, then the next; a barrier opens once every thread has arrived.
// __shared__ variables become function statics, one copy per kernel, shared
// by the block's threads as on a GPU. A __syncthreads that some threads of a
// block never reach (undefined on a GPU) is reported through
// cudaGetLastError as cudaErrorLaunchFailure instead of hanging. Only the small
// CUDA subset the project's kernels use exists.

#ifndef ADDERNET_CUSTOM_OPS_EMULATION_CUDA_EMULATION_H_
#define ADDERNET_CUSTOM_OPS_EMULATION_CUDA_EMULATION_H_

#include <ucontext.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorLaunchFailure = 719,
};

using std::max;
using std::min;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

namespace cuda_emulation {

inline dim3 thread_index, block_index, block_dim, grid_dim;
// Per host thread, as the CUDA runtime keeps it.
inline thread_local cudaError_t last_error = cudaSuccess;
// Launches so far, so a test can tell that a kernel really ran here.
inline std::atomic<uint64_t> launches{0};
// One launch at a time in the process (TensorFlow runs ops on several
// threads): the globals above and the kernels' __shared__ statics are shared.
inline std::mutex launch_mutex;

struct Block {
  ucontext_t scheduler;
  std::vector<ucontext_t> fibers;
  std::vector<bool> finished;
  unsigned current = 0;
  void (*entry)(void*) = nullptr;
  void* body = nullptr;
};
inline Block* block = nullptr;

inline void FiberMain() {
  block->entry(block->body);
  block->finished[block->current] = true;  // then uc_link resumes the scheduler
}

inline void SetThreadIndex(unsigned t) {
  thread_index = dim3(t % block_dim.x, (t / block_dim.x) % block_dim.y,
                      t / (block_dim.x * block_dim.y));
}

// Runs body() as kernel<<<grid, block>>> would and returns when all blocks
// have finished. Launches are serialized.
template <typename Body>
void Launch(dim3 grid, dim3 block_shape, Body&& body) {
  std::lock_guard<std::mutex> lock(launch_mutex);
  ++launches;
  // A GPU's limits on the launch shape (compute capability 8.0 and later).
  const uint64_t block_threads = uint64_t(block_shape.x) * block_shape.y * block_shape.z;
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 ||
      grid.z > 65535 || block_threads == 0 || block_threads > 1024 || block_shape.z > 64) {
    last_error = cudaErrorInvalidConfiguration;
    return;
  }
  constexpr size_t kStackBytes = 64 * 1024;
  const unsigned threads = block_shape.x * block_shape.y * block_shape.z;
  const uint64_t blocks = uint64_t(grid.x) * grid.y * grid.z;
  std::vector<char> stacks(kStackBytes * threads);
  Block b;
  b.fibers.resize(threads);
  b.entry = [](void* f) { (*static_cast<Body*>(f))(); };
  b.body = &body;
  block = &b;
  block_dim = block_shape;
  grid_dim = grid;
  for (uint64_t index = 0; index < blocks && last_error == cudaSuccess; ++index) {
    block_index = dim3(index % grid.x, (index / grid.x) % grid.y,
                       index / (uint64_t(grid.x) * grid.y));
    b.finished.assign(threads, false);
    for (unsigned t = 0; t < threads; ++t) {
      getcontext(&b.fibers[t]);
      b.fibers[t].uc_stack.ss_sp = stacks.data() + t * kStackBytes;
      b.fibers[t].uc_stack.ss_size = kStackBytes;
      b.fibers[t].uc_link = &b.scheduler;
      makecontext(&b.fibers[t], FiberMain, 0);
    }
    for (;;) {  // one pass: every live thread runs to its next barrier or its end
      for (unsigned t = 0; t < threads; ++t) {
        if (b.finished[t]) continue;
        b.current = t;
        SetThreadIndex(t);
        swapcontext(&b.scheduler, &b.fibers[t]);
      }
      const auto done = std::count(b.finished.begin(), b.finished.end(), true);
      if (done == threads) break;
      if (done > 0) {
        std::fprintf(stderr, "cuda_emulation: block (%u, %u, %u): %ld of %u threads returned "
                     "while the others wait at __syncthreads\n", block_index.x, block_index.y,
                     block_index.z, long(done), threads);
        last_error = cudaErrorLaunchFailure;
        break;
      }
    }
  }
  block = nullptr;
}

}  // namespace cuda_emulation

#define threadIdx (::cuda_emulation::thread_index)
#define blockIdx (::cuda_emulation::block_index)
#define blockDim (::cuda_emulation::block_dim)
#define gridDim (::cuda_emulation::grid_dim)

inline void __syncthreads() {
  auto* b = ::cuda_emulation::block;
  swapcontext(&b->fibers[b->current], &b->scheduler);
}

inline cudaError_t cudaGetLastError() {
  const cudaError_t error = ::cuda_emulation::last_error;
  ::cuda_emulation::last_error = cudaSuccess;
  return error;
}

#endif  // ADDERNET_CUSTOM_OPS_EMULATION_CUDA_EMULATION_H_
