// Token embedding lookup: one thread per output element reads its row of the table in the
// table's dtype (the ids were uploaded by the caller).
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

template <typename T>
__global__ void embedding_kernel(WeightRef table, const int32_t* __restrict__ ids,
                                 T* __restrict__ y, int64_t d, int64_t total) {
  ZF_GRID_STRIDE(i, total) y[i] = from_float<T>(load(table, int64_t{ids[i / d]} * d + i % d));
}

}  // namespace

cudaError_t launch_embedding(Act t, WeightRef table, const int32_t* ids, void* y, int64_t n,
                             int64_t d, cudaStream_t stream) {
  const int64_t total = n * d;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    embedding_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        table, ids, static_cast<T*>(y), d, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
