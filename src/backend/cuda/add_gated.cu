// The gated residual x[B, L, D] + gate[B, D] * r[B, L, D] (gate broadcast over the L tokens of
// a sample, same dtype as x), one thread per element.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

template <typename T>
__global__ void add_gated_kernel(const T* __restrict__ x, const T* __restrict__ gate,
                                 const T* __restrict__ r, T* __restrict__ y, int64_t len_x_d,
                                 int64_t d, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const float g = to_float(gate[(i / len_x_d) * d + i % d]);
    y[i] = from_float<T>(to_float(x[i]) + g * to_float(r[i]));
  }
}

}  // namespace

cudaError_t launch_add_gated(Act t, const void* x, const void* gate, const void* r, void* y,
                             int64_t batch, int64_t len, int64_t d, cudaStream_t stream) {
  const int64_t total = batch * len * d;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    add_gated_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(gate), static_cast<const T*>(r),
        static_cast<T*>(y), len * d, d, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
