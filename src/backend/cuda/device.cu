// CUDA device discovery. A machine without a driver or GPU reports no devices
// rather than failing, so one binary serves both kinds of machine.
#include <cuda_runtime.h>

#include "backend/device.h"

namespace zflow {

bool built_with_cuda() {
  return true;
}

std::vector<CudaDeviceInfo> cuda_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return {};
  }
  std::vector<CudaDeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    devices.push_back({i, prop.name, prop.totalGlobalMem, prop.major, prop.minor});
  }
  return devices;
}

}  // namespace zflow
