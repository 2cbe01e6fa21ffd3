// The convolution's own kernels (the GEMM between them is cuBLASLt's; see conv2d.cpp):
// im2col of one sample's output-row chunk, and the per-channel bias.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;

// col[kidx][p] for kidx = (ci, i, j), p = output pixel (r - r0) * ow + c of the chunk.
template <typename T>
__global__ void im2col_kernel(const T* __restrict__ x, T* __restrict__ col, Im2col s, int64_t r0,
                              int64_t m, int64_t total) {
  ZF_GRID_STRIDE(idx, total) {
    const int64_t kidx = idx / m, p = idx % m;
    const int64_t ci = kidx / (s.kh * s.kw), i = kidx / s.kw % s.kh, j = kidx % s.kw;
    const int64_t r = r0 + p / s.ow, c = p % s.ow;
    const int64_t ih = r * s.stride + i - s.pad_top, iw = c * s.stride + j - s.pad_left;
    col[idx] = ih >= 0 && ih < s.h && iw >= 0 && iw < s.w ? x[(ci * s.h + ih) * s.w + iw]
                                                          : from_float<T>(0.0f);
  }
}

template <typename T>
__global__ void channel_bias_kernel(T* __restrict__ y, WeightRef bias, int64_t channels,
                                    int64_t pixels, int64_t total) {
  ZF_GRID_STRIDE(i, total) y[i] = from_float<T>(to_float(y[i]) + load(bias, i / pixels % channels));
}

}  // namespace

cudaError_t launch_im2col(Act t, const void* x, void* col, const Im2col& s, int64_t r0, int64_t m,
                          cudaStream_t stream) {
  const int64_t total = s.cin * s.kh * s.kw * m;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    im2col_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(col), s, r0, m, total);
    return cudaGetLastError();
  });
}

cudaError_t launch_channel_bias(Act t, void* y, WeightRef bias, int64_t channels, int64_t pixels,
                                int64_t total, cudaStream_t stream) {
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    channel_bias_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<T*>(y), bias, channels, pixels, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
