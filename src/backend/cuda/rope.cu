// Rotary position embedding on x[B, L, H, D], one thread per rotated pair; the cos/sin
// tables [Bc, L, D/2] are float32 (Bc = 1 shares one table across the batch).
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

template <typename T>
__global__ void rope_kernel(const T* __restrict__ x, const float* __restrict__ cos,
                            const float* __restrict__ sin, T* __restrict__ y, int64_t len,
                            int64_t heads, int64_t pairs, bool per_batch_table, bool interleaved,
                            int64_t total_pairs) {
  const int64_t d = 2 * pairs;
  ZF_GRID_STRIDE(p, total_pairs) {
    const int64_t j = p % pairs;
    const int64_t blh = p / pairs;  // (b * len + l) * heads + h
    const int64_t bl = blh / heads;
    const int64_t table = (per_batch_table ? bl : bl % len) * pairs + j;
    const int64_t i1 = blh * d + (interleaved ? 2 * j : j);
    const int64_t i2 = i1 + (interleaved ? 1 : pairs);
    const float x1 = to_float(x[i1]), x2 = to_float(x[i2]);
    const float c = cos[table], s = sin[table];
    y[i1] = from_float<T>(x1 * c - x2 * s);
    y[i2] = from_float<T>(x1 * s + x2 * c);
  }
}

}  // namespace

cudaError_t launch_rope(Act t, const void* x, const float* cos, const float* sin, void* y,
                        int64_t batch, int64_t len, int64_t heads, int64_t d, bool per_batch_table,
                        bool interleaved, cudaStream_t stream) {
  const int64_t total = batch * len * heads * (d / 2);
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int kThreads = 256;
    rope_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), cos, sin, static_cast<T*>(y), len, heads, d / 2, per_batch_table,
        interleaved, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
