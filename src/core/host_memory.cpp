#include "core/host_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <mutex>

namespace zflow::host_memory {
namespace {

// Cached sizes are rounded up to whole 64 KiB so that buffers of nearly one size share them.
constexpr size_t kGranule = size_t{64} << 10;

size_t default_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  const size_t eighth = pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 8 : 0;
  return std::min(size_t{2} << 30, eighth);
}

// Lets the kernel take a cached buffer's pages when memory runs short (MADV_FREE): until it
// does, writing to them again costs nothing; after, they come back as fresh zero pages.
void lazy_free(void* data, size_t bytes) {
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGE_SIZE));
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_FREE);
}

struct Block {
  void* data;
  size_t bytes;  // rounded
};

class Cache {
 public:
  void* take(size_t bytes) {
    std::lock_guard lock(mu_);
    const auto it =
        std::find_if(free_.begin(), free_.end(), [&](const Block& b) { return b.bytes == bytes; });
    if (it == free_.end()) return nullptr;
    void* data = it->data;
    held_ -= it->bytes;
    free_.erase(it);
    return data;
  }

  // Keeps the block, newest first, freeing the oldest ones past the limit; false when the block
  // alone is over it (the caller frees it).
  bool keep(void* data, size_t bytes) {
    if (bytes > limit()) return false;
    lazy_free(data, bytes);
    std::lock_guard lock(mu_);
    free_.push_front({data, bytes});
    held_ += bytes;
    trim();
    return true;
  }

  void set_limit(size_t bytes) {
    std::lock_guard lock(mu_);
    limit_ = bytes;
    trim();
  }

  size_t limit() const {
    std::lock_guard lock(mu_);
    return limit_;
  }

  size_t held() const {
    std::lock_guard lock(mu_);
    return held_;
  }

 private:
  void trim() {  // mu_ held
    while (held_ > limit_) {
      held_ -= free_.back().bytes;
      std::free(free_.back().data);
      free_.pop_back();
    }
  }

  mutable std::mutex mu_;
  std::list<Block> free_;  // most recently freed first
  size_t held_ = 0;
  size_t limit_ = default_limit();
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

size_t rounded(size_t bytes) {
  if (bytes < kCachedFrom) return std::max<size_t>((bytes + 63) / 64 * 64, 64);
  return (bytes + kGranule - 1) / kGranule * kGranule;
}

}  // namespace

void* allocate(size_t bytes) {
  const size_t size = rounded(bytes);
  if (size >= kCachedFrom)
    if (void* reused = cache().take(size)) return reused;
  return std::aligned_alloc(64, size);
}

void release(void* data, size_t bytes) {
  const size_t size = rounded(bytes);
  if (size >= kCachedFrom && cache().keep(data, size)) return;
  std::free(data);
}

void set_cache_limit(size_t bytes) {
  cache().set_limit(bytes);
}

size_t cache_limit() {
  return cache().limit();
}

size_t cached_bytes() {
  return cache().held();
}

}  // namespace zflow::host_memory
