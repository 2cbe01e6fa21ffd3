// The host buffer cache: large buffers come back for the same size, within the limit, oldest
// freed first; small ones are never held.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "core/host_memory.h"
#include "core/tensor.h"

namespace zflow {
namespace {

// Each test starts from an empty cache; the limit is restored after it.
class HostMemory : public ::testing::Test {
 protected:
  void SetUp() override {
    limit_ = host_memory::cache_limit();
    host_memory::set_cache_limit(0);
  }
  void TearDown() override { host_memory::set_cache_limit(limit_); }
  size_t limit_ = 0;
};

constexpr size_t kMiB = size_t{1} << 20;

TEST_F(HostMemory, LargeBuffersAreReusedForTheSameSize) {
  host_memory::set_cache_limit(64 * kMiB);
  void* a = host_memory::allocate(3 * kMiB + 5);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 3 * kMiB + 5);
  host_memory::release(a, 3 * kMiB + 5);
  EXPECT_EQ(host_memory::cached_bytes(), 3 * kMiB + 64 * 1024);  // rounded to 64 KiB
  void* other_size = host_memory::allocate(5 * kMiB);
  EXPECT_NE(other_size, a);
  void* b = host_memory::allocate(3 * kMiB + 7);  // rounds to the same 64 KiB
  EXPECT_EQ(b, a);
  EXPECT_EQ(host_memory::cached_bytes(), 0u);
  host_memory::release(b, 3 * kMiB + 7);
  host_memory::release(other_size, 5 * kMiB);
  EXPECT_EQ(host_memory::cached_bytes(), 8 * kMiB + 64 * 1024);
}

TEST_F(HostMemory, TheLimitFreesTheOldestFirstAndSmallBuffersAreNeverHeld) {
  host_memory::set_cache_limit(10 * kMiB);
  void* first = host_memory::allocate(4 * kMiB);
  void* second = host_memory::allocate(4 * kMiB);
  void* third = host_memory::allocate(4 * kMiB);
  host_memory::release(first, 4 * kMiB);
  host_memory::release(second, 4 * kMiB);
  host_memory::release(third, 4 * kMiB);  // 12 MiB: the first freed goes
  EXPECT_EQ(host_memory::cached_bytes(), 8 * kMiB);
  void* too_big = host_memory::allocate(11 * kMiB);
  host_memory::release(too_big, 11 * kMiB);  // over the limit alone: freed
  EXPECT_EQ(host_memory::cached_bytes(), 8 * kMiB);
  void* small = host_memory::allocate(kMiB / 2);
  host_memory::release(small, kMiB / 2);
  EXPECT_EQ(host_memory::cached_bytes(), 8 * kMiB);
  host_memory::set_cache_limit(0);
  EXPECT_EQ(host_memory::cached_bytes(), 0u);
}

TEST_F(HostMemory, TensorsDrawFromTheCache) {
  host_memory::set_cache_limit(64 * kMiB);
  const void* data = nullptr;
  {
    const Tensor t = Tensor::empty({1024, 1024}, DType::F32);  // 4 MiB
    data = t.raw();
  }
  EXPECT_EQ(host_memory::cached_bytes(), 4 * kMiB);
  const Tensor again = Tensor::empty({512, 2048}, DType::F32);
  EXPECT_EQ(again.raw(), data);
}

}  // namespace
}  // namespace zflow
