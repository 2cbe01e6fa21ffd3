// The autoencoder's reshaping kernels on x[B, C, H, W] (planes = B * C): zero padding of
// the last two dims and nearest-neighbour 2x upsampling. One thread per output element.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void pad2d_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t h, int64_t w,
                             int64_t oh, int64_t ow, int top, int left, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const int64_t c = i % ow, r = i / ow % oh, plane = i / (ow * oh);
    const int64_t ir = r - top, ic = c - left;
    y[i] =
        ir >= 0 && ir < h && ic >= 0 && ic < w ? x[(plane * h + ir) * w + ic] : from_float<T>(0.0f);
  }
}

template <typename T>
__global__ void upsample2x_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t h, int64_t w,
                                  int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const int64_t c = i % (2 * w), r = i / (2 * w) % (2 * h), plane = i / (4 * w * h);
    y[i] = x[(plane * h + r / 2) * w + c / 2];
  }
}

}  // namespace

cudaError_t launch_pad2d(Act t, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                         int top, int bottom, int left, int right, cudaStream_t stream) {
  const int64_t oh = h + top + bottom, ow = w + left + right, total = planes * oh * ow;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    pad2d_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), h, w, oh, ow, top, left, total);
    return cudaGetLastError();
  });
}

cudaError_t launch_upsample2x(Act t, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                              cudaStream_t stream) {
  const int64_t total = planes * 4 * h * w;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    upsample2x_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(y), h, w, total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
