// Which compute devices this build and this machine offer.
#pragma once

#include <cstddef>
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
std::vector<CudaDeviceInfo> cuda_devices();

}  // namespace zflow
