// The adaLN modulation ops: x[B, L, D] scaled, gated or shifted and scaled by per-sample
// vectors [B, D] (same dtype as x), one thread per element.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

// y = x * v (r == nullptr) or y = x + v * r, v broadcast over the L tokens of a sample.
template <typename T>
__global__ void modulate_kernel(const T* __restrict__ x, const T* __restrict__ v,
                                const T* __restrict__ r, T* __restrict__ y, int64_t len_x_d,
                                int64_t d, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const float vi = to_float(v[(i / len_x_d) * d + i % d]);
    const float xi = to_float(x[i]);
    y[i] = from_float<T>(r == nullptr ? xi * vi : xi + vi * to_float(r[i]));
  }
}

// y = x * (1 + scale) + shift, in the CPU loop's order (token_ops.cpp).
template <typename T>
__global__ void shift_scale_kernel(const T* __restrict__ x, const T* __restrict__ shift,
                                   const T* __restrict__ scale, T* __restrict__ y, int64_t len_x_d,
                                   int64_t d, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const int64_t v = (i / len_x_d) * d + i % d;
    const float scaled = to_float(x[i]) * (1.0f + to_float(scale[v]));
    y[i] = from_float<T>(scaled + to_float(shift[v]));
  }
}

}  // namespace

cudaError_t launch_shift_scale(Act t, const void* x, const void* shift, const void* scale, void* y,
                               int64_t batch, int64_t len, int64_t d, cudaStream_t stream) {
  const int64_t total = batch * len * d;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    shift_scale_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(shift), static_cast<const T*>(scale),
        static_cast<T*>(y), len * d, d, total);
    return cudaGetLastError();
  });
}

cudaError_t launch_modulate(Act t, const void* x, const void* v, const void* r, void* y,
                            int64_t batch, int64_t len, int64_t d, cudaStream_t stream) {
  const int64_t total = batch * len * d;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    modulate_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(v), static_cast<const T*>(r),
        static_cast<T*>(y), len * d, d, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
