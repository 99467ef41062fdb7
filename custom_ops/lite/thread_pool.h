// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// A fixed pool of worker threads for the LiteRT kernel, which gets no thread
// pool from the runtime. ParallelFor(units, cost, fn) has the signature the
// CPU kernels take (adder_conv2d_cpu.h): fn(begin, end) runs on contiguous
// chunks of [0, units), handed out through an atomic counter so that a
// thread slowed by another process does not hold the others up; the
// caller's thread works too. Which thread runs a chunk does not change its
// result. Idle workers spin for kSpinMicros before sleeping, so the many
// short calls of a batch-1 network do not each pay a wake-up; calls are
// serialized, so one pool may serve several models.

#ifndef ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_
#define ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ADDERNET_PAUSE() _mm_pause()
#else
#define ADDERNET_PAUSE() std::this_thread::yield()
#endif

namespace addernet {
namespace lite {

class ThreadPool {
 public:
  // `threads` >= 1 threads per call: the caller and threads - 1 workers.
  explicit ThreadPool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { Work(i); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    start_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // `cost` is the work of one unit in pair operations; calls below
  // kMinCostPerThread per thread run on the caller's thread alone.
  template <typename Fn>
  void operator()(int64_t units, int64_t cost, const Fn& fn) const {
    constexpr int64_t kMinCostPerThread = 1 << 16;
    constexpr int64_t kChunksPerThread = 4;
    const int64_t helpers = std::min<int64_t>(
        {threads_, units, std::max<int64_t>(1, units * cost / kMinCostPerThread)}) - 1;
    if (helpers <= 0) {
      if (units > 0) fn(int64_t{0}, units);
      return;
    }
    std::lock_guard<std::mutex> serial(call_mu_);
    const std::function<void(int64_t, int64_t)> job = fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      units_ = units;
      chunk_ = std::max<int64_t>(1, units / ((helpers + 1) * kChunksPerThread));
      helpers_ = helpers;
      next_.store(0, std::memory_order_relaxed);
      pending_.store(static_cast<int>(helpers), std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    start_.notify_all();
    RunChunks(job, units, chunk_);
    if (!SpinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
  }

 private:
  static constexpr int64_t kSpinMicros = 100;

  template <typename Pred>
  static bool SpinUntil(const Pred& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 0;; ++i) {
      if (pred()) return true;
      ADDERNET_PAUSE();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > deadline) return false;
    }
  }

  void RunChunks(const std::function<void(int64_t, int64_t)>& job, int64_t units,
                 int64_t chunk) const {
    for (;;) {
      const int64_t begin = next_.fetch_add(chunk, std::memory_order_relaxed);
      if (begin >= units) return;
      job(begin, std::min(units, begin + chunk));
    }
  }

  void Work(int index) {
    uint64_t seen = 0;
    for (;;) {
      SpinUntil([&] { return generation_.load(std::memory_order_acquire) != seen; });
      const std::function<void(int64_t, int64_t)>* job;
      int64_t units, chunk;
      {
        std::unique_lock<std::mutex> lock(mu_);
        start_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
        seen = generation_.load(std::memory_order_acquire);
        if (stop_) return;
        if (index > helpers_) continue;
        job = job_;
        units = units_;
        chunk = chunk_;
      }
      RunChunks(*job, units, chunk);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_one();
      }
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  mutable std::mutex call_mu_;
  // Guards the call's description below (written by the caller, read by
  // workers when they see a new generation) and the condition variables.
  mutable std::mutex mu_;
  mutable std::condition_variable start_, done_;
  mutable const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  mutable int64_t units_ = 0, chunk_ = 1, helpers_ = 0;
  mutable std::atomic<int64_t> next_{0};
  mutable std::atomic<int> pending_{0};
  mutable std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

}  // namespace lite
}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_
