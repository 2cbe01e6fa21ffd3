// Device memory for tensors: stream-ordered allocations from the device's default pool
// (cudaMallocAsync on the context stream; freed blocks stay cached in the pool, see
// context.cpp), and copies between host and device. Large copies go through two pinned
// staging buffers in turn, so copying one chunk on the host overlaps the DMA of the other
// and a weight read from a memory-mapped file never needs pinning itself.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "backend/cuda/context.h"
#include "backend/device.h"
#include "core/device_memory.h"
#include "core/error.h"
#include "core/quant_blocks.h"

namespace zflow {
namespace {

std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_peak_in_use{0};
std::atomic<int64_t> g_allocations{0};
std::atomic<bool> g_pool_used{false};

void note_allocation(size_t bytes) {
  const size_t now = g_in_use.fetch_add(bytes) + bytes;
  size_t peak = g_peak_in_use.load();
  while (now > peak && !g_peak_in_use.compare_exchange_weak(peak, now)) {
  }
  g_allocations.fetch_add(1);
}

size_t pool_attribute(cudaMemPoolAttr attr) {
  uint64_t value = 0;
  ZF_CUDA(cudaMemPoolGetAttribute(cuda::context().pool, attr, &value));
  return static_cast<size_t>(value);
}

// Two pinned host buffers used in turn for large copies; one copy at a time.
class Staging {
 public:
  static constexpr size_t kChunk = size_t{8} << 20;
  // Copies below this size go straight from or to pageable memory (the driver stages them
  // itself, and a pinned round trip would cost more than it saves).
  static constexpr size_t kThreshold = size_t{1} << 20;

  static Staging& get() {
    static Staging* staging = new Staging;  // never deleted: pinned memory outlives main
    return *staging;
  }

  void upload(void* dst, const void* src, size_t bytes) {
    std::lock_guard lock(mutex_);
    init();
    const cudaStream_t stream = cuda::context().stream;
    for (size_t off = 0, chunk = 0; off < bytes; off += kChunk, ++chunk) {
      const size_t n = std::min(kChunk, bytes - off);
      const int i = static_cast<int>(chunk % 2);
      ZF_CUDA(cudaEventSynchronize(done_[i]));  // the previous DMA out of buffer i is over
      std::memcpy(buffer_[i], static_cast<const char*>(src) + off, n);
      ZF_CUDA(cudaMemcpyAsync(static_cast<char*>(dst) + off, buffer_[i], n, cudaMemcpyHostToDevice,
                              stream));
      ZF_CUDA(cudaEventRecord(done_[i], stream));
    }
  }

  void download(void* dst, const void* src, size_t bytes) {
    std::lock_guard lock(mutex_);
    init();
    const cudaStream_t stream = cuda::context().stream;
    const size_t chunks = (bytes + kChunk - 1) / kChunk;
    auto enqueue = [&](size_t chunk) {
      const size_t off = chunk * kChunk, n = std::min(kChunk, bytes - off);
      const int i = static_cast<int>(chunk % 2);
      ZF_CUDA(cudaMemcpyAsync(buffer_[i], static_cast<const char*>(src) + off, n,
                              cudaMemcpyDeviceToHost, stream));
      ZF_CUDA(cudaEventRecord(done_[i], stream));
    };
    enqueue(0);
    for (size_t chunk = 0; chunk < chunks; ++chunk) {
      if (chunk + 1 < chunks) enqueue(chunk + 1);  // its buffer was emptied last iteration
      const size_t off = chunk * kChunk, n = std::min(kChunk, bytes - off);
      const int i = static_cast<int>(chunk % 2);
      ZF_CUDA(cudaEventSynchronize(done_[i]));
      std::memcpy(static_cast<char*>(dst) + off, buffer_[i], n);
    }
  }

 private:
  void init() {
    if (buffer_[0] != nullptr) return;
    for (int i = 0; i < 2; ++i) {
      ZF_CUDA(cudaMallocHost(&buffer_[i], kChunk));
      ZF_CUDA(cudaEventCreateWithFlags(&done_[i], cudaEventDisableTiming));
    }
  }

  std::mutex mutex_;
  void* buffer_[2] = {nullptr, nullptr};
  cudaEvent_t done_[2] = {nullptr, nullptr};
};

}  // namespace

namespace device_memory {

std::shared_ptr<Storage> allocate(Device device, size_t bytes) {
  ZF_CHECK(device == Device::CUDA, "[tensor] cannot allocate on device {}", device_name(device));
  cuda::Context& ctx = cuda::context();
  g_pool_used = true;
  if (bytes == 0) return Storage::borrow(nullptr, 0, nullptr, Device::CUDA);
  void* p = nullptr;
  const cudaError_t status = cudaMallocAsync(&p, bytes, ctx.stream);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail(
        "[cuda] out of device memory: allocating {} bytes with {} in use by tensors and {} "
        "reserved by the pool ({})",
        bytes, g_in_use.load(), pool_attribute(cudaMemPoolAttrReservedMemCurrent),
        cudaGetErrorString(status));
  }
  note_allocation(bytes);
  // Freed on the stream, after every kernel already queued that may still read it. Errors
  // here cannot be thrown (a deleter); during exit the runtime may already be gone.
  std::shared_ptr<void> owner(p, [bytes](void* q) {
    cudaFreeAsync(q, cuda::context().stream);
    g_in_use.fetch_sub(bytes);
  });
  return Storage::borrow(p, bytes, std::move(owner), Device::CUDA);
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  const cudaStream_t stream = cuda::context().stream;
  if (dst_device == Device::CUDA && src_device == Device::CUDA) {
    ZF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  } else if (dst_device == Device::CUDA) {
    if (bytes >= Staging::kThreshold) {
      Staging::get().upload(dst, src, bytes);
    } else {
      // From pageable memory the call returns once `src` has been read.
      ZF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    }
  } else if (src_device == Device::CUDA) {
    if (bytes >= Staging::kThreshold) {
      Staging::get().download(dst, src, bytes);
    } else {
      ZF_CUDA(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream));
      ZF_CUDA(cudaStreamSynchronize(stream));
    }
  } else {
    std::memcpy(dst, src, bytes);
  }
}

void zero(void* dst, size_t bytes) {
  ZF_CUDA(cudaMemsetAsync(dst, 0, bytes, cuda::context().stream));
}

void copy_strided(const Tensor& dst, const Tensor& src) {
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.is_contiguous() && src.dtype() == dst.dtype()) {
    copy(dst.raw(), Device::CUDA, src.raw(), Device::CUDA, dst.nbytes());
    return;
  }
  const cudaStream_t stream = cuda::context().stream;
  if (dtype_is_quantized(src.dtype())) {
    ZF_CHECK(src.is_contiguous() && (dst.dtype() == DType::F32 || dst.dtype() == DType::BF16),
             "[copy] the GPU dequantises a contiguous {} tensor into F32 or BF16 only, asked "
             "for {} from a {} one",
             dtype_name(src.dtype()), dtype_name(dst.dtype()),
             src.is_contiguous() ? "contiguous" : "strided");
    const int64_t k = src.shape().back();
    cuda::check_launch(cuda::launch_dequantize_rows(
                           block_kind(src.dtype()), static_cast<const uint8_t*>(src.raw()),
                           static_cast<int64_t>(dtype_nbytes(src.dtype(), k)), nullptr,
                           cuda::act_of(dst), dst.raw(), n / k, k, stream),
                       "dequantize_rows_kernel");
    return;
  }
  ZF_CHECK(src.ndim() <= cuda::kMaxCopyRank, "[copy] a GPU copy handles up to {} dims, got {}",
           cuda::kMaxCopyRank, shape_str(src.shape()));
  cuda::CopyLayout layout;
  layout.rank = src.ndim();
  for (int d = 0; d < src.ndim(); ++d) {
    layout.shape[d] = src.shape()[d];
    layout.strides[d] = src.strides()[d];
  }
  if (src.dtype() == dst.dtype()) {
    cuda::check_launch(cuda::launch_gather(static_cast<int>(dtype_size(src.dtype())), src.raw(),
                                           dst.raw(), layout, n, stream),
                       "gather_kernel");
    return;
  }
  auto is_float = [](DType t) { return t == DType::F32 || t == DType::BF16 || t == DType::F16; };
  ZF_CHECK(is_float(src.dtype()) && is_float(dst.dtype()),
           "[copy] the GPU converts between F32, BF16 and F16 only, asked {} to {} (convert "
           "on the host)",
           dtype_name(src.dtype()), dtype_name(dst.dtype()));
  cuda::check_launch(
      cuda::launch_convert(cuda::float_kind(src.dtype()), src.raw(), cuda::float_kind(dst.dtype()),
                           dst.raw(), layout, n, stream),
      "convert_kernel");
}

}  // namespace device_memory

CudaMemoryStats cuda_memory_stats() {
  CudaMemoryStats s;
  s.in_use_bytes = g_in_use.load();
  s.peak_in_use_bytes = g_peak_in_use.load();
  s.allocations = g_allocations.load();
  if (g_pool_used) {
    s.reserved_bytes = pool_attribute(cudaMemPoolAttrReservedMemCurrent);
    s.peak_reserved_bytes = pool_attribute(cudaMemPoolAttrReservedMemHigh);
  }
  return s;
}

void cuda_reset_peak_memory() {
  g_peak_in_use = g_in_use.load();
  if (!g_pool_used) return;
  uint64_t zero = 0;  // the only value the driver accepts: resets the high-water mark
  ZF_CUDA(cudaMemPoolSetAttribute(cuda::context().pool, cudaMemPoolAttrReservedMemHigh, &zero));
}

void cuda_release_cached_memory() {
  if (!g_pool_used) return;
  cuda::Context& ctx = cuda::context();
  ZF_CUDA(cudaStreamSynchronize(ctx.stream));
  ZF_CUDA(cudaMemPoolTrimTo(ctx.pool, 0));
}

void cuda_synchronize() {
  if (!g_pool_used) return;
  ZF_CUDA(cudaStreamSynchronize(cuda::context().stream));
}

}  // namespace zflow
