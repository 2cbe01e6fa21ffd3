// Shared by the op front ends (ops.cpp, token_ops.cpp): which device an op's inputs live
// on, the activation dtype rule of ops.h, and the hand-off to the CUDA kernels, which a
// CPU-only build does not have (there a GPU tensor is refused by name).
#pragma once

#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"

#ifdef ZFLOW_WITH_CUDA
#include "backend/cuda/kernels.h"
// Returns the CUDA kernel's result when the inputs are on the GPU.
#define ZF_DISPATCH_CUDA(device, op, call) \
  if ((device) == ::zflow::Device::CUDA) return call
#else
#define ZF_DISPATCH_CUDA(device, op, call)                                         \
  if ((device) == ::zflow::Device::CUDA)                                           \
  ::zflow::fail(                                                                   \
      "[{}] got a GPU tensor, and this build has no CUDA backend (configure with " \
      "-DZFLOW_CUDA=ON)",                                                          \
      op)
#endif

namespace zflow::ops::detail {

// The device every defined input is on (CPU if none is defined).
inline Device common_device(const char* op, std::initializer_list<const Tensor*> inputs) {
  bool seen = false;
  Device device = Device::CPU;
  for (const Tensor* t : inputs) {
    if (!t->defined()) continue;
    if (!seen) {
      device = t->device();
      seen = true;
    }
    ZF_CHECK(t->device() == device,
             "[{}] inputs are on different devices ({} and {}); move them with Tensor::to(Device)",
             op, device_name(device), device_name(t->device()));
  }
  return device;
}

// Activations are F32 on the CPU, F32 or BF16 on the GPU.
inline void require_activation(const char* op, const char* what, const Tensor& t) {
  ZF_CHECK(t.defined(), "[{}] {} is undefined", op, what);
  if (t.device() == Device::CPU) {
    ZF_CHECK(t.dtype() == DType::F32,
             "[{}] {} must be F32 (activations on the CPU are float32), got {} {}", op, what,
             dtype_name(t.dtype()), shape_str(t.shape()));
  } else {
    ZF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16,
             "[{}] {} must be F32 or BF16 (activations on the GPU), got {} {}", op, what,
             dtype_name(t.dtype()), shape_str(t.shape()));
  }
}

// A second activation input must have the first one's dtype.
inline void require_same_dtype(const char* op, const char* what, const Tensor& t,
                               const Tensor& first) {
  require_activation(op, what, t);
  ZF_CHECK(t.dtype() == first.dtype(), "[{}] {} is {} but the other activations are {}", op, what,
           dtype_name(t.dtype()), dtype_name(first.dtype()));
}

}  // namespace zflow::ops::detail
