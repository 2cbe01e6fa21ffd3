// Host memory for tensors. Large buffers are kept when freed and handed out again for the same
// size: a transformer forward allocates the same activation shapes layer after layer, and a
// fresh buffer of that size costs the kernel a page fault and a page clearing for every 4 KiB of
// it (a tenth of a CPU forward before this cache). Small buffers go straight to malloc, which
// reuses them already.
#pragma once

#include <cstddef>

namespace zflow::host_memory {

// Buffers of at least this many bytes are cached.
inline constexpr size_t kCachedFrom = size_t{1} << 20;

// 64-byte aligned, uninitialised (a reused buffer holds its last user's bytes); nullptr when
// the system has no memory left.
void* allocate(size_t bytes);
// Gives back a buffer of allocate(bytes): kept for reuse while the cache stays within its
// limit (the least recently freed buffers are freed first), else freed.
void release(void* data, size_t bytes);

// The most bytes the cache keeps (default: 2 GiB, or an eighth of the machine's memory if less);
// lowering it frees what no longer fits.
void set_cache_limit(size_t bytes);
size_t cache_limit();
size_t cached_bytes();

}  // namespace zflow::host_memory
