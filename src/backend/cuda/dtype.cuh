// Element access inside the kernels (.cu files only). Activations are float or bf16 (`T`),
// always computed in float; weights and per-feature vectors may also be f16 and are read
// through a WeightRef, whose kind is a run-time value (uniform across a warp, so the switch
// costs no divergence and each kernel is compiled once per activation type).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "backend/cuda/launch.h"

namespace zflow::cuda {

__device__ __forceinline__ float to_float(float x) {
  return x;
}
__device__ __forceinline__ float to_float(__nv_bfloat16 x) {
  return __bfloat162float(x);
}
__device__ __forceinline__ float to_float(__half x) {
  return __half2float(x);
}

template <typename T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}
template <>
__device__ __forceinline__ __half from_float<__half>(float x) {
  return __float2half_rn(x);
}

__device__ __forceinline__ float load(const WeightRef& w, int64_t i) {
  switch (w.kind) {
    case FloatKind::BF16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(w.data)[i]);
    case FloatKind::F16:
      return __half2float(static_cast<const __half*>(w.data)[i]);
    default:
      return static_cast<const float*>(w.data)[i];
  }
}
// The element, or `absent` when there is no vector.
__device__ __forceinline__ float load_or(const WeightRef& w, int64_t i, float absent) {
  return w.data == nullptr ? absent : load(w, i);
}

// Grid-stride loop over [0, n).
#define ZF_GRID_STRIDE(i, n)                                                \
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < (n); \
       i += int64_t{gridDim.x} * blockDim.x)

// Calls fn(T{}) with T the storage type of `t`, returning its cudaError_t.
template <typename Fn>
cudaError_t with_act(Act t, Fn&& fn) {
  if (t == Act::BF16) return fn(__nv_bfloat16{});
  return fn(float{});
}

}  // namespace zflow::cuda
