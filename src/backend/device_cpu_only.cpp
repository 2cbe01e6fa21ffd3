// The CPU-only build's answer to "which CUDA devices are there": none.
#ifndef ZFLOW_WITH_CUDA
#include "backend/device.h"

namespace zflow {

bool built_with_cuda() {
  return false;
}
std::vector<CudaDeviceInfo> cuda_devices() {
  return {};
}

}  // namespace zflow
#endif
