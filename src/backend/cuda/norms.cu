// Per-row kernels over the last dim: softmax, RMSNorm, LayerNorm (the norms optionally
// followed by a RowEpilogue in the same pass). One block per row; the row is read from global
// memory once per pass (two or three passes, the later ones from cache), statistics
// accumulated in float32 per thread and reduced across the block.
#include "backend/cuda/dtype.cuh"
#include "backend/cuda/reduce.cuh"

namespace zflow::cuda {
namespace {

// Threads per row: a warp for short rows (qk-norm over a 128-wide head), more for wide ones.
int threads_for(int64_t d) {
  return d <= 128 ? 32 : d <= 1024 ? 128 : 256;
}

template <typename T>
__global__ void softmax_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t d) {
  const T* row = x + blockIdx.x * d;
  T* out = y + blockIdx.x * d;
  float mx = -INFINITY;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) mx = fmaxf(mx, to_float(row[i]));
  mx = block_reduce(mx, MaxOp{}, -INFINITY);
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += expf(to_float(row[i]) - mx);
  sum = block_reduce(sum, SumOp{}, 0.0f);
  const float inv = 1.0f / sum;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    out[i] = from_float<T>(expf(to_float(row[i]) - mx) * inv);
}

// The epilogue on the normalised value n of feature i of row `row`, in the CPU's order.
template <typename T>
__device__ __forceinline__ float finish(const RowEpilogue& e, float n, int64_t row, int64_t i,
                                        int64_t d) {
  const int64_t v = (row / e.rows_per_sample) * d + i;
  if (e.scale != nullptr) n = n * (1.0f + to_float(static_cast<const T*>(e.scale)[v]));
  if (e.shift != nullptr) n = n + to_float(static_cast<const T*>(e.shift)[v]);
  if (e.residual != nullptr) {
    const float r = to_float(static_cast<const T*>(e.residual)[row * d + i]);
    n = e.gate != nullptr ? r + to_float(static_cast<const T*>(e.gate)[v]) * n : r + n;
  }
  return n;
}

template <typename T>
__global__ void rms_norm_kernel(const T* __restrict__ x, WeightRef w, T* __restrict__ y, int64_t d,
                                float eps, RowEpilogue then) {
  const T* row = x + blockIdx.x * d;
  T* out = y + blockIdx.x * d;
  float sum_sq = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float v = to_float(row[i]);
    sum_sq += v * v;
  }
  sum_sq = block_reduce(sum_sq, SumOp{}, 0.0f);
  const float inv = rsqrtf(sum_sq / static_cast<float>(d) + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x)
    out[i] = from_float<T>(
        finish<T>(then, to_float(row[i]) * inv * load_or(w, i, 1.0f), blockIdx.x, i, d));
}

template <typename T>
__global__ void layer_norm_kernel(const T* __restrict__ x, WeightRef w, WeightRef b,
                                  T* __restrict__ y, int64_t d, float eps, RowEpilogue then) {
  const T* row = x + blockIdx.x * d;
  T* out = y + blockIdx.x * d;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) sum += to_float(row[i]);
  const float mean = block_reduce(sum, SumOp{}, 0.0f) / static_cast<float>(d);
  float var = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float c = to_float(row[i]) - mean;
    var += c * c;
  }
  var = block_reduce(var, SumOp{}, 0.0f) / static_cast<float>(d);
  const float inv = rsqrtf(var + eps);
  for (int64_t i = threadIdx.x; i < d; i += blockDim.x) {
    const float n = (to_float(row[i]) - mean) * inv * load_or(w, i, 1.0f) + load_or(b, i, 0.0f);
    out[i] = from_float<T>(finish<T>(then, n, blockIdx.x, i, d));
  }
}

}  // namespace

cudaError_t launch_rows(RowOp op, Act t, const void* x, void* y, int64_t rows, int64_t d,
                        WeightRef w, WeightRef b, float eps, const RowEpilogue& then,
                        cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (rows >= (int64_t{1} << 31)) return cudaErrorInvalidConfiguration;
  const unsigned grid = static_cast<unsigned>(rows);
  const int threads = threads_for(d);
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    const T* in = static_cast<const T*>(x);
    T* out = static_cast<T*>(y);
    switch (op) {
      case RowOp::Softmax:
        softmax_kernel<<<grid, threads, 0, stream>>>(in, out, d);
        break;
      case RowOp::RmsNorm:
        rms_norm_kernel<<<grid, threads, 0, stream>>>(in, w, out, d, eps, then);
        break;
      case RowOp::LayerNorm:
        layer_norm_kernel<<<grid, threads, 0, stream>>>(in, w, b, out, d, eps, then);
        break;
    }
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
