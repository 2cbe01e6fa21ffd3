// What Tensor needs from a GPU backend: device allocations and copies. The CUDA backend
// implements these (backend/cuda/memory.cu); a CPU-only build links
// core/device_memory_cpu_only.cpp, whose functions refuse with a clear error. Callers use
// Tensor (empty/zeros with a Device, to(Device), copy_from), not these functions.
#pragma once

#include <cstddef>
#include <memory>

#include "core/tensor.h"

namespace zflow::device_memory {

// `bytes` of uninitialised device memory; freed (back to the pool) when the last
// Storage reference goes.
std::shared_ptr<Storage> allocate(Device device, size_t bytes);
// Copies bytes between host and device memory in either direction (or device to device).
// Returns once the host side may be reused (upload) or read (download).
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
// Zero-fills device memory (queued on the device's stream).
void zero(void* dst, size_t bytes);
// dst = src elementwise, both on the device: src may be strided, dst is contiguous of the
// same shape; float dtypes (F32, BF16, F16) convert, other dtypes must match.
void copy_strided(const Tensor& dst, const Tensor& src);

}  // namespace zflow::device_memory
