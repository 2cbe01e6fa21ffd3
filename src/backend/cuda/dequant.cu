// GGML block-quantised weights on the GPU: rows dequantised to the activation dtype, a thread
// per value, by the layouts shared with the host (core/quant_block_values.h), so a float32
// result equals the CPU's (and gguf-py's) bit for bit. Serves linear (a whole weight before its
// GEMM: weights stay quantised in device memory, as ComfyUI-GGUF keeps them) and embedding (the
// rows of the looked-up ids).
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

template <typename T>
__global__ void dequantize_rows_kernel(quant::BlockKind kind, const uint8_t* __restrict__ blocks,
                                       int64_t row_bytes, const int32_t* __restrict__ rows,
                                       T* __restrict__ y, int64_t k, int64_t total) {
  const int values = quant::block_values(kind), bytes = quant::block_bytes(kind);
  ZF_GRID_STRIDE(i, total) {
    const int64_t r = i / k, j = i % k;
    const int64_t src = rows == nullptr ? r : rows[r];
    const uint8_t* block = blocks + src * row_bytes + (j / values) * bytes;
    y[i] = from_float<T>(quant::block_value(kind, block, static_cast<int>(j % values)));
  }
}

}  // namespace

cudaError_t launch_dequantize_rows(quant::BlockKind kind, const uint8_t* blocks, int64_t row_bytes,
                                   const int32_t* rows, Act t, void* y, int64_t n_rows, int64_t k,
                                   cudaStream_t stream) {
  const int64_t total = n_rows * k;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    dequantize_rows_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        kind, blocks, row_bytes, rows, static_cast<T*>(y), k, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
