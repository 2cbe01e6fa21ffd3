#include "core/thread_pool.h"

#include <algorithm>
#include <memory>

#include "core/error.h"

namespace zflow {

namespace {

thread_local bool t_inside_pool_job = false;

std::pair<int64_t, int64_t> chunk_range(int64_t n, int chunks, int index) {
  const int64_t base = n / chunks, extra = n % chunks;
  const int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

std::unique_ptr<ThreadPool>& compute_pool() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  ZF_CHECK(threads >= 1, "[threads] need at least one thread, got {}", threads);
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::worker_loop(int index) {
  int64_t seen = 0;
  for (;;) {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
    if (stop_) return;
    seen = generation_;
    const auto* job = job_;
    const int64_t n = job_n_;
    const int chunks = job_chunks_;
    lock.unlock();
    if (index < chunks) {
      const auto [b, e] = chunk_range(n, chunks, index);
      t_inside_pool_job = true;
      (*job)(b, e);
      t_inside_pool_job = false;
    }
    lock.lock();
    if (--pending_ == 0) done_.notify_one();
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain) {
  if (n <= 0) return;
  const int chunks = static_cast<int>(
      std::min<int64_t>(threads(), std::max<int64_t>(1, n / std::max<int64_t>(grain, 1))));
  if (chunks == 1 || workers_.empty() || t_inside_pool_job) {
    fn(0, n);
    return;
  }
  std::lock_guard call_lock(call_mutex_);
  {
    std::lock_guard lock(mutex_);
    job_ = &fn;
    job_n_ = n;
    job_chunks_ = chunks;
    pending_ = static_cast<int>(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  const auto [b, e] = chunk_range(n, chunks, 0);
  t_inside_pool_job = true;
  fn(b, e);
  t_inside_pool_job = false;
  std::unique_lock lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
}

ThreadPool& ThreadPool::compute() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& pool = compute_pool();
    if (!pool)
      pool = std::make_unique<ThreadPool>(std::max(1u, std::thread::hardware_concurrency()));
  });
  return *compute_pool();
}

void ThreadPool::set_compute_threads(int threads) {
  compute_pool() = std::make_unique<ThreadPool>(threads);
}

}  // namespace zflow
