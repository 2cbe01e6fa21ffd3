// The CPU-only build's device memory: there is none, so GPU tensors are refused.
#ifndef ZFLOW_WITH_CUDA
#include "core/device_memory.h"
#include "core/error.h"

namespace zflow::device_memory {
namespace {

[[noreturn]] void no_cuda(const char* what) {
  fail(
      "[tensor] {} needs the CUDA backend, and this build has none (configure with "
      "-DZFLOW_CUDA=ON)",
      what);
}

}  // namespace

std::shared_ptr<Storage> allocate(Device, size_t) {
  no_cuda("a GPU allocation");
}
void copy(void*, Device, const void*, Device, size_t) {
  no_cuda("a copy to or from the GPU");
}
void zero(void*, size_t) {
  no_cuda("zero-filling GPU memory");
}
void copy_strided(const Tensor&, const Tensor&) {
  no_cuda("a copy on the GPU");
}

}  // namespace zflow::device_memory
#endif
