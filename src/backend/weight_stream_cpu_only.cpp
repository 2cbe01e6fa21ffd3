// The CPU-only build's WeightStream: there is no GPU to stream to, so making one is refused.
#ifndef ZFLOW_WITH_CUDA
#include "backend/weight_stream.h"
#include "core/error.h"

namespace zflow {

struct WeightStream::Impl {};

WeightStream::WeightStream(const std::vector<std::vector<Tensor>>&, std::string what) {
  fail(
      "[offload] {}: --offload streams weights to a GPU, and this build has no CUDA backend "
      "(configure with -DZFLOW_CUDA=ON)",
      what);
}
WeightStream::~WeightStream() = default;
size_t WeightStream::size() const {
  return 0;
}
std::vector<Tensor> WeightStream::acquire(size_t) {
  return {};
}
void WeightStream::release(size_t) {}
size_t WeightStream::device_bytes() const {
  return 0;
}
size_t WeightStream::host_bytes() const {
  return 0;
}

}  // namespace zflow
#endif
