#include <atomic>
#include <thread>
#include <vector>

#include "core/thread_pool.h"
#include "test_util.h"

namespace zflow {
namespace {

TEST(ThreadPool, CoversRangeExactlyOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 3, 7, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    pool.parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  }
}

TEST(ThreadPool, NestedCallsRunSerially) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      pool.parallel_for(10, [&](int64_t b2, int64_t e2) { total += e2 - b2; });
  });
  EXPECT_EQ(total.load(), 40);
}

TEST(ThreadPool, GrainLimitsChunks) {
  ThreadPool pool(4);
  std::atomic<int> calls{0};
  pool.parallel_for(
      10, [&](int64_t, int64_t) { calls++; }, 100);
  EXPECT_EQ(calls.load(), 1);
}

// Two jobs in one process (the server's case) call parallel_for on the same pool at once:
// the calls queue, and each still covers its range exactly once.
TEST(ThreadPool, ConcurrentCallersEachCoverTheirRange) {
  ThreadPool pool(2);
  constexpr int64_t kN = 5000;
  std::vector<std::atomic<int>> hits_a(kN), hits_b(kN);
  auto job = [&](std::vector<std::atomic<int>>& hits) {
    for (int round = 0; round < 50; ++round)
      pool.parallel_for(kN, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[i]++;
      });
  };
  std::thread a(job, std::ref(hits_a)), b(job, std::ref(hits_b));
  a.join();
  b.join();
  for (int64_t i = 0; i < kN; ++i) {
    ASSERT_EQ(hits_a[i].load(), 50) << i;
    ASSERT_EQ(hits_b[i].load(), 50) << i;
  }
}

}  // namespace
}  // namespace zflow
