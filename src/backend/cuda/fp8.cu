// Float8 on the GPU: widening scaled float8 weights to the activation dtype, and quantising
// activations to e4m3 with one scale from their absolute maximum, for the cuBLASLt FP8 matmul
// (backend/cuda/linear.cpp). Conversions are cuda_fp8.h's: round to nearest even, saturating
// to +-448 (__NV_SATFINITE) as torch's float8_e4m3fn cast does.
#include <cuda_fp8.h>

#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kE4M3Max = 448.0f;

__device__ __forceinline__ float widen_fp8(uint8_t code, Fp8Kind kind) {
  __nv_fp8_storage_t s = code;
  const __half_raw h = __nv_cvt_fp8_to_halfraw(s, kind == Fp8Kind::E4M3 ? __NV_E4M3 : __NV_E5M2);
  return __half2float(__half(h));
}

template <typename T>
__global__ void dequantize_kernel(const uint8_t* __restrict__ codes, float scale, Fp8Kind kind,
                                  T* __restrict__ y, int64_t n) {
  ZF_GRID_STRIDE(i, n) y[i] = from_float<T>(widen_fp8(codes[i], kind) * scale);
}

// |x| as unsigned bits orders like the floats (non-negative), so atomicMax on the bits is a
// float max. NaN (bits above +inf) wins, and then the whole tensor quantises to NaN, as in torch.
template <typename T>
__global__ void amax_kernel(const T* __restrict__ x, int64_t n, unsigned* __restrict__ amax) {
  // On the bits throughout: fmaxf would drop a NaN.
  unsigned m = 0;
  ZF_GRID_STRIDE(i, n) m = max(m, __float_as_uint(fabsf(to_float(x[i]))));
  for (int offset = 16; offset > 0; offset /= 2)
    m = max(m, __shfl_xor_sync(0xFFFFFFFFu, m, offset));
  if ((threadIdx.x & 31) == 0) atomicMax(amax, m);
}

template <typename T>
__global__ void quantize_kernel(const T* __restrict__ x, int64_t n, const float* __restrict__ amax,
                                float* __restrict__ scale_out, uint8_t* __restrict__ q) {
  const float a = *amax;
  // A NaN amax makes a NaN scale, and every code NaN.
  const float scale = a > 0.0f || a != a ? a / kE4M3Max : 1.0f;
  const float inverse = 1.0f / scale;
  if (blockIdx.x == 0 && threadIdx.x == 0) *scale_out = scale;
  ZF_GRID_STRIDE(i, n) {
    q[i] = __nv_cvt_float_to_fp8(to_float(x[i]) * inverse, __NV_SATFINITE, __NV_E4M3);
  }
}

}  // namespace

cudaError_t launch_fp8_dequantize(Fp8Kind kind, const uint8_t* codes, float scale, Act t, void* y,
                                  int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return with_act(t, [&](auto tag) {
    using T = decltype(tag);
    dequantize_kernel<T>
        <<<grid_for(n, kThreads), kThreads, 0, stream>>>(codes, scale, kind, static_cast<T*>(y), n);
    return cudaGetLastError();
  });
}

cudaError_t launch_fp8_quantize(Act t, const void* x, int64_t n, float* amax, float* scale,
                                uint8_t* q, cudaStream_t stream) {
  if (const cudaError_t e = cudaMemsetAsync(amax, 0, sizeof(float), stream); e != cudaSuccess)
    return e;
  return with_act(t, [&](auto tag) {
    using T = decltype(tag);
    const T* xs = static_cast<const T*>(x);
    if (n > 0)
      amax_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
          xs, n, reinterpret_cast<unsigned*>(amax));
    quantize_kernel<T>
        <<<grid_for(n > 0 ? n : 1, kThreads), kThreads, 0, stream>>>(xs, n, amax, scale, q);
    return cudaGetLastError();
  });
}

}  // namespace zflow::cuda
