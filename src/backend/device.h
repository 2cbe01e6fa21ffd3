// Which compute devices this build and this machine offer, and what the GPU's memory pool
// holds (for `zflow bench` and the server's /metrics).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace zflow {

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  size_t memory_bytes = 0;
  int sm_major = 0, sm_minor = 0;
};

bool built_with_cuda();
// The CUDA devices present; empty in a CPU-only build or on a machine without a GPU.
// GPU tensors live on device 0 (one GPU per process for now).
std::vector<CudaDeviceInfo> cuda_devices();

// Device memory of the tensors (every GPU tensor comes from one stream-ordered pool that
// keeps freed blocks for reuse). All zero in a CPU-only build or before the first GPU tensor.
struct CudaMemoryStats {
  size_t in_use_bytes = 0;         // held by live tensors
  size_t peak_in_use_bytes = 0;    // highest in_use_bytes since start or the last reset
  size_t reserved_bytes = 0;       // taken from the driver by the pool: in use plus cached
  size_t peak_reserved_bytes = 0;  // highest reserved_bytes since start or the last reset
  int64_t allocations = 0;         // tensors allocated so far
};
CudaMemoryStats cuda_memory_stats();
void cuda_reset_peak_memory();
// Returns the pool's cached (free) blocks to the driver.
void cuda_release_cached_memory();
// Waits until every queued GPU operation has finished (timings, error checks).
void cuda_synchronize();

// Which kernel runs bf16 attention on the GPU: "cudnn" (cuDNN's fused SDPA, when this build has
// the cuDNN frontend and the machine's libcudnn.so.9 loads) or "built-in"; "" in a CPU-only build.
// Asking may load cuDNN.
std::string cuda_attention_kernel();

}  // namespace zflow
