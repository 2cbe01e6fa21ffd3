// GroupNorm (optionally fused with SiLU) over x[B, C, ...]: a statistics kernel, one block
// per (batch, group) reducing in float64 (a group can hold millions of values, as on the
// CPU), then an elementwise kernel applying the normalisation and the per-channel affine.
#include "backend/cuda/dtype.cuh"
#include "backend/cuda/reduce.cuh"

namespace zflow::cuda {
namespace {

constexpr int kStatThreads = 512;
constexpr int kThreads = 256;

// stats[2 g] = mean, stats[2 g + 1] = 1 / sqrt(var + eps), for group g = blockIdx.x.
template <typename T>
__global__ void group_stats_kernel(const T* __restrict__ x, int64_t group_size, float eps,
                                   float* __restrict__ stats) {
  const T* p = x + blockIdx.x * group_size;
  double sum = 0.0;
  for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) sum += to_float(p[i]);
  const double mean = block_reduce(sum, SumOp{}, 0.0) / static_cast<double>(group_size);
  double sq = 0.0;
  for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) {
    const double d = to_float(p[i]) - mean;
    sq += d * d;
  }
  const double var = block_reduce(sq, SumOp{}, 0.0) / static_cast<double>(group_size);
  if (threadIdx.x == 0) {
    stats[2 * blockIdx.x] = static_cast<float>(mean);
    stats[2 * blockIdx.x + 1] = static_cast<float>(rsqrt(var + static_cast<double>(eps)));
  }
}

template <typename T>
__global__ void group_apply_kernel(const T* __restrict__ x, const float* __restrict__ stats,
                                   WeightRef gamma, WeightRef beta, T* __restrict__ y,
                                   int64_t channels, int64_t per_group, int64_t spatial,
                                   bool fuse_silu, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const int64_t plane = i / spatial;  // b * channels + c
    const int64_t c = plane % channels;
    const int64_t g = (plane / channels) * (channels / per_group) + c / per_group;
    const float v = (to_float(x[i]) - stats[2 * g]) * stats[2 * g + 1] * load_or(gamma, c, 1.0f) +
                    load_or(beta, c, 0.0f);
    y[i] = from_float<T>(fuse_silu ? v / (1.0f + expf(-v)) : v);
  }
}

}  // namespace

cudaError_t launch_group_norm(Act t, const void* x, float* stats, WeightRef gamma, WeightRef beta,
                              void* y, int64_t batch, int64_t channels, int64_t groups,
                              int64_t spatial, float eps, bool fuse_silu, cudaStream_t stream) {
  const int64_t total = batch * channels * spatial;
  if (total == 0) return cudaSuccess;
  if (batch * groups >= (int64_t{1} << 31)) return cudaErrorInvalidConfiguration;
  const int64_t per_group = channels / groups;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    const T* in = static_cast<const T*>(x);
    group_stats_kernel<<<static_cast<unsigned>(batch * groups), kStatThreads, 0, stream>>>(
        in, per_group * spatial, eps, stats);
    const cudaError_t status = cudaGetLastError();
    if (status != cudaSuccess) return status;
    group_apply_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        in, stats, gamma, beta, static_cast<T*>(y), channels, per_group, spatial, fuse_silu, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
