// Rotary position embedding on x[B, L, H, D], optionally after a per-head RMSNorm (QK-norm).
// One warp per head row: it sums the row's squares with shuffles when normalising, then each
// lane rotates pairs j = lane, lane + 32, ... (adjacent lanes read adjacent features in both
// pair layouts, so the loads coalesce). The cos/sin tables [Bc, L, D/2] are float32 (Bc = 1
// shares one table across the batch).
#include "backend/cuda/dtype.cuh"
#include "backend/cuda/reduce.cuh"

namespace zflow::cuda {
namespace {

constexpr int kRowsPerBlock = 4;

template <typename T>
__global__ void __launch_bounds__(32 * kRowsPerBlock)
    rope_kernel(const T* __restrict__ x, const float* __restrict__ cos,
                const float* __restrict__ sin, T* __restrict__ y, RopeProblem p) {
  const int64_t rows = p.batch * p.len * p.heads;
  const int64_t row = int64_t{blockIdx.x} * kRowsPerBlock + threadIdx.x / 32;
  if (row >= rows) return;  // the whole warp: the reduction below needs all 32 lanes
  const int lane = threadIdx.x % 32;
  const int64_t d = p.d, pairs = d / 2;
  const T* in = x + row * d;
  T* out = y + row * d;
  float inv = 1.0f;
  if (p.normalise) {
    float sum_sq = 0.0f;
    for (int64_t i = lane; i < d; i += 32) {
      const float v = to_float(in[i]);
      sum_sq += v * v;
    }
    inv = rsqrtf(warp_reduce(sum_sq, SumOp{}) / static_cast<float>(d) + p.eps);
  }
  const int64_t bl = row / p.heads;  // b * len + l
  const int64_t table = (p.per_batch_table ? bl : bl % p.len) * pairs;
  const int64_t step = p.interleaved ? 1 : pairs;
  for (int64_t j = lane; j < pairs; j += 32) {
    const int64_t i1 = p.interleaved ? 2 * j : j, i2 = i1 + step;
    float x1 = to_float(in[i1]), x2 = to_float(in[i2]);
    if (p.normalise) {
      x1 = x1 * inv * load_or(p.norm, i1, 1.0f);
      x2 = x2 * inv * load_or(p.norm, i2, 1.0f);
    }
    const float c = cos[table + j], s = sin[table + j];
    out[i1] = from_float<T>(x1 * c - x2 * s);
    out[i2] = from_float<T>(x1 * s + x2 * c);
  }
}

}  // namespace

cudaError_t launch_rope(Act t, const void* x, const float* cos, const float* sin, void* y,
                        const RopeProblem& p, cudaStream_t stream) {
  const int64_t rows = p.batch * p.len * p.heads;
  if (rows == 0 || p.d == 0) return cudaSuccess;
  const int64_t blocks = (rows + kRowsPerBlock - 1) / kRowsPerBlock;
  if (blocks >= (int64_t{1} << 31)) return cudaErrorInvalidConfiguration;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    rope_kernel<<<static_cast<unsigned>(blocks), 32 * kRowsPerBlock, 0, stream>>>(
        static_cast<const T*>(x), cos, sin, static_cast<T*>(y), p);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
