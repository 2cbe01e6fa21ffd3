// CPU matrix multiply, BLAS-style:  C = alpha * op(A) * op(B) + beta * C
// with op(A) an M x K float32 matrix and op(B) a K x N matrix stored in float32,
// bfloat16, float16 or float8 (e4m3fn, e5m2; a scaled float8 weight passes its scale as
// alpha), or, as a Linear weight (trans_b) only, in a GGML block type (Q8_0,
// Q4_K, ...: blocks along K, ldb a whole number of blocks). Weights stay in their stored
// dtype in memory; each cache block of B is widened or dequantised to float32 as it is
// packed. Row-major; lda/ldb/ldc are row strides in elements.
//   trans_a = false: A is M x K;  trans_a = true: A is K x M.
//   trans_b = false: B is K x N;  trans_b = true: B is N x K (a Linear weight).
// With beta == 0, C is written without being read (it may hold garbage or NaN). With
// alpha == 0 or k == 0, A and B are not read and C = beta * C, as in BLAS.
// gemm picks its kernel (AVX-512 BF16, AVX-512, AVX2 + FMA or portable) from the processor
// and B's dtype at run time (gemm_kernels.h); ZFLOW_CPU_KERNEL=scalar|avx2|avx512|avx512bf16
// forces one. Design and tuning: gemm_blocking.h.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace zflow::cpu {

struct GemmArgs {
  bool trans_a = false;
  bool trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.0f;
  const float* a = nullptr;
  int64_t lda = 0;
  const void* b = nullptr;
  DType b_dtype = DType::F32;
  int64_t ldb = 0;
  float beta = 0.0f;
  float* c = nullptr;
  int64_t ldc = 0;
};

// The fast path: blocked, multithreaded, picks its kernel from the CPU's features.
void gemm(const GemmArgs& args);

// What gemm may round for speed, process-wide (as torch.set_float32_matmul_precision):
//   Bfloat16 (the default): with a bf16, float8 or GGML-quantised B on a processor with
//     AVX-512 BF16, A (and a dequantised B) is rounded to bfloat16 and pairs of products are
//     accumulated in float32 (vdpbf16ps) at twice the float32 rate, as a bfloat16 model
//     computes in PyTorch and ggml; attention's two products too (attention.cpp);
//   Float32: every product in float32, A exact.
enum class MatmulPrecision { Float32, Bfloat16 };
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();

// The definition: a plain triple loop accumulating in double, single-threaded.
// Tests compare gemm against it; nothing else should call it.
void gemm_reference(const GemmArgs& args);

}  // namespace zflow::cpu
