// The CPU-only build's answers: no CUDA devices, no device memory.
#ifndef ZFLOW_WITH_CUDA
#include "backend/device.h"

namespace zflow {

bool built_with_cuda() {
  return false;
}
std::vector<CudaDeviceInfo> cuda_devices() {
  return {};
}
CudaMemoryStats cuda_memory_stats() {
  return {};
}
void cuda_reset_peak_memory() {}
void cuda_release_cached_memory() {}
void cuda_synchronize() {}
std::string cuda_attention_kernel() {
  return {};
}

}  // namespace zflow
#endif
