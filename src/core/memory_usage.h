// Host memory use of this process, for benchmarks and /metrics.
#pragma once

#include <cstddef>

namespace zflow {

size_t peak_rss_bytes();          // high-water mark of resident memory since the process started
size_t current_rss_bytes();       // resident memory now
size_t available_memory_bytes();  // the kernel's MemAvailable: what can be had without swapping

}  // namespace zflow
