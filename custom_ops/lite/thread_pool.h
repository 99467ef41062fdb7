// Copyright 2026 The addernet_tf Authors. Licensed under the Apache License 2.0.
// A fixed pool of worker threads for the LiteRT kernel, which gets no thread
// pool from the runtime. ParallelFor(units, cost, fn) has the signature the
// CPU kernels take (adder_conv2d_cpu.h): fn(begin, end) runs on contiguous
// slices of [0, units), the caller's thread taking the first slice. Calls are
// serialized, so one pool may serve several models.

#ifndef ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_
#define ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace addernet {
namespace lite {

class ThreadPool {
 public:
  // `threads` >= 1 slices per call; threads - 1 workers are started.
  explicit ThreadPool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { Work(i); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    start_.notify_all();
    for (auto& worker : workers_) worker.join();
  }

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return threads_; }

  // `cost` is the work of one unit in pair operations; calls below
  // kMinCostPerSlice per slice run on the caller's thread alone.
  template <typename Fn>
  void operator()(int64_t units, int64_t cost, const Fn& fn) const {
    constexpr int64_t kMinCostPerSlice = 1 << 16;
    const int64_t slices = std::min<int64_t>(
        {threads_, units, std::max<int64_t>(1, units * cost / kMinCostPerSlice)});
    if (slices <= 1) {
      if (units > 0) fn(int64_t{0}, units);
      return;
    }
    std::lock_guard<std::mutex> serial(call_mu_);
    const std::function<void(int64_t, int64_t)> job = fn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &job;
      units_ = units;
      slices_ = slices;
      pending_ = static_cast<int>(slices - 1);
      ++generation_;
    }
    start_.notify_all();
    job(0, units / slices);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void Work(int index) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t, int64_t)>* job;
      int64_t begin, end;
      {
        std::unique_lock<std::mutex> lock(mu_);
        start_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= slices_) continue;
        job = job_;
        begin = units_ * index / slices_;
        end = units_ * (index + 1) / slices_;
      }
      (*job)(begin, end);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  const int threads_;
  std::vector<std::thread> workers_;
  mutable std::mutex call_mu_;
  mutable std::mutex mu_;
  mutable std::condition_variable start_, done_;
  mutable const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  mutable int64_t units_ = 0, slices_ = 1;
  mutable int pending_ = 0;
  mutable uint64_t generation_ = 0;
  bool stop_ = false;
};

}  // namespace lite
}  // namespace addernet

#endif  // ADDERNET_CUSTOM_OPS_LITE_THREAD_POOL_H_
