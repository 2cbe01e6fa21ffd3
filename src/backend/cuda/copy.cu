// Device-side strided copy with dtype conversion: what Tensor::contiguous(), clone() and
// to(DType) do on the GPU. One thread per output element; the source offset comes from
// the element's multi-index (rank <= 8, so the loop unrolls over a fixed array).
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ int64_t source_offset(const CopyLayout& l, int64_t linear) {
  int64_t off = 0;
#pragma unroll
  for (int d = kMaxCopyRank - 1; d >= 0; --d) {
    if (d < l.rank) {
      off += (linear % l.shape[d]) * l.strides[d];
      linear /= l.shape[d];
    }
  }
  return off;
}

template <typename S, typename D>
__global__ void convert_kernel(const S* __restrict__ src, D* __restrict__ dst, CopyLayout layout,
                               int64_t n) {
  ZF_GRID_STRIDE(i, n) dst[i] = from_float<D>(to_float(src[source_offset(layout, i)]));
}

template <typename E>
__global__ void gather_kernel(const E* __restrict__ src, E* __restrict__ dst, CopyLayout layout,
                              int64_t n) {
  ZF_GRID_STRIDE(i, n) dst[i] = src[source_offset(layout, i)];
}

template <typename S, typename D>
cudaError_t convert(const void* src, void* dst, const CopyLayout& layout, int64_t n,
                    cudaStream_t stream) {
  convert_kernel<S, D><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<const S*>(src), static_cast<D*>(dst), layout, n);
  return cudaGetLastError();
}

template <typename S>
cudaError_t convert_from(const void* src, FloatKind dst_kind, void* dst, const CopyLayout& layout,
                         int64_t n, cudaStream_t stream) {
  switch (dst_kind) {
    case FloatKind::F32:
      return convert<S, float>(src, dst, layout, n, stream);
    case FloatKind::BF16:
      return convert<S, __nv_bfloat16>(src, dst, layout, n, stream);
    default:
      return convert<S, __half>(src, dst, layout, n, stream);
  }
}

template <typename E>
cudaError_t gather(const void* src, void* dst, const CopyLayout& layout, int64_t n,
                   cudaStream_t stream) {
  gather_kernel<E><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<const E*>(src),
                                                                   static_cast<E*>(dst), layout, n);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_convert(FloatKind src_kind, const void* src, FloatKind dst_kind, void* dst,
                           const CopyLayout& layout, int64_t n, cudaStream_t stream) {
  switch (src_kind) {
    case FloatKind::F32:
      return convert_from<float>(src, dst_kind, dst, layout, n, stream);
    case FloatKind::BF16:
      return convert_from<__nv_bfloat16>(src, dst_kind, dst, layout, n, stream);
    default:
      return convert_from<__half>(src, dst_kind, dst, layout, n, stream);
  }
}

cudaError_t launch_gather(int element_bytes, const void* src, void* dst, const CopyLayout& layout,
                          int64_t n, cudaStream_t stream) {
  switch (element_bytes) {
    case 1:
      return gather<uint8_t>(src, dst, layout, n, stream);
    case 2:
      return gather<uint16_t>(src, dst, layout, n, stream);
    case 4:
      return gather<uint32_t>(src, dst, layout, n, stream);
    default:
      return gather<uint64_t>(src, dst, layout, n, stream);
  }
}

}  // namespace zflow::cuda
