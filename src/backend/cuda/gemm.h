// Matrix products on the GPU through cuBLASLt, row-major in our terms:
//   D[m, n] = A[m, k] @ op(B) (+ bias[n]),  op(B) = B[k, n], or W^T for a Linear weight W[n, k],
// optionally batched with fixed strides. All of A, B, D and the bias share one dtype: F32
// (true fp32 compute, no TF32) or BF16 (tensor cores, fp32 accumulation). Or, with `fp8`
// (sm_89+, a Linear weight, not batched): A and B are e4m3, D and the bias BF16, and
// D = alpha * a_scale * (A @ W^T) (+ bias), fp32 accumulation. Queued on the context stream.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace zflow::cuda {

struct GemmDesc {
  DType dtype = DType::F32;
  int64_t m = 0, n = 0, k = 0;
  const void* a = nullptr;  // [m, k], row stride lda
  int64_t lda = 0;
  const void* b = nullptr;  // [n, k] if b_is_weight, else [k, n]; row stride ldb
  int64_t ldb = 0;
  bool b_is_weight = false;
  void* d = nullptr;  // [m, n], row stride ldd
  int64_t ldd = 0;
  const void* bias = nullptr;  // [n] or null
  int batch = 1;               // products, each `stride_*` elements after the previous
  int64_t stride_a = 0, stride_b = 0, stride_d = 0;
  bool fp8 = false;
  const float* a_scale = nullptr;  // fp8: A's scale, one float in device memory
  float alpha = 1.0f;              // fp8: the weight's scale (host value)
};

// Whether cuBLASLt's FP8 matmul can take a Linear of this shape on this GPU: sm_89 or newer,
// and K and N multiples of 16 (its alignment rule for e4m3 operands).
bool fp8_gemm_supported(int64_t n, int64_t k);

void gemm(const GemmDesc& g);  // an Error where cuBLASLt has no algorithm for it
// The same, false (nothing queued) where cuBLASLt has no algorithm for it: a caller with another
// way to the product takes that instead.
bool try_gemm(const GemmDesc& g);

}  // namespace zflow::cuda
