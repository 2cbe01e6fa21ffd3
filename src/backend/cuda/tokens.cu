// Token layout kernels (ops.h: patchify, unpatchify, fill_rows): one thread per output
// element, index arithmetic written out as in backend/cpu/tokens.cpp. Pure copies, so bf16
// and float give the CPU's values exactly (bf16 after its rounding of the inputs).
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per token feature: tokens[b, row, (py * p + px) * C + c].
template <typename T>
__global__ void patchify_kernel(const T* __restrict__ x, T* __restrict__ tokens, PatchLayout s,
                                int64_t total) {
  const int64_t p = s.patch, c = s.channels, features = p * p * c;
  const int64_t wt = s.width / p, image_tokens = (s.height / p) * wt;
  ZF_GRID_STRIDE(i, total) {
    const int64_t f = i % features, row = (i / features) % s.length, b = i / (features * s.length);
    if (row >= image_tokens) {
      tokens[i] = from_float<T>(0.0f);
      continue;
    }
    const int64_t ch = f % c, px = (f / c) % p, py = f / (c * p);
    const int64_t y = row / wt * p + py, xx = row % wt * p + px;
    tokens[i] = x[((b * c + ch) * s.height + y) * s.width + xx];
  }
}

// One thread per latent element: x[b, c, y, x].
template <typename T>
__global__ void unpatchify_kernel(const T* __restrict__ tokens, T* __restrict__ x, PatchLayout s,
                                  int64_t total) {
  const int64_t p = s.patch, c = s.channels, features = p * p * c, wt = s.width / p;
  ZF_GRID_STRIDE(i, total) {
    const int64_t xx = i % s.width, y = (i / s.width) % s.height;
    const int64_t ch = (i / (s.width * s.height)) % c, b = i / (s.width * s.height * c);
    const int64_t row = (y / p) * wt + xx / p, f = ((y % p) * p + xx % p) * c + ch;
    x[i] = tokens[(b * s.length + row) * features + f];
  }
}

template <typename T>
__global__ void fill_rows_kernel(const T* __restrict__ x, const T* __restrict__ row,
                                 const int64_t* __restrict__ range, T* __restrict__ y, int64_t len,
                                 int64_t d, int64_t total) {
  ZF_GRID_STRIDE(i, total) {
    const int64_t r = (i / d) % len, b = i / (d * len);
    const bool filled = r >= range[2 * b] && r < range[2 * b + 1];
    y[i] = !filled ? x[i] : row != nullptr ? row[i % d] : from_float<T>(0.0f);
  }
}

}  // namespace

cudaError_t launch_patchify(Act t, const void* x, void* tokens, const PatchLayout& s,
                            cudaStream_t stream) {
  const int64_t total = s.batch * s.length * s.patch * s.patch * s.channels;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    patchify_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<T*>(tokens), s, total);
    return cudaGetLastError();
  });
}

cudaError_t launch_unpatchify(Act t, const void* tokens, void* x, const PatchLayout& s,
                              cudaStream_t stream) {
  const int64_t total = s.batch * s.channels * s.height * s.width;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    unpatchify_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(tokens), static_cast<T*>(x), s, total);
    return cudaGetLastError();
  });
}

cudaError_t launch_fill_rows(Act t, const void* x, const void* row, const int64_t* range, void* y,
                             int64_t batch, int64_t len, int64_t d, cudaStream_t stream) {
  const int64_t total = batch * len * d;
  if (total == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    fill_rows_kernel<<<grid_for(total, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), static_cast<const T*>(row), range, static_cast<T*>(y), len, d,
        total);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
