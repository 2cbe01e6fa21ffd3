// cuBLASLt behind GemmDesc. cuBLASLt is column-major, so the row-major product
// D[m, n] = A @ op(B) is asked for as its transpose D^T[n, m] = op(B)^T @ A^T, where every
// row-major matrix is already the column-major view of its transpose:
//   A[m, k] row-major  = A^T as a column-major k x m matrix (ld lda), used untransposed;
//   B[k, n] row-major  = B^T as a column-major n x k matrix, used untransposed;
//   W[n, k] row-major  = W^T as a column-major k x n matrix, used transposed;
//   D[m, n] row-major  = D^T as a column-major n x m matrix; the bias runs along its n rows.
// The algorithm for each distinct problem (shapes, dtype, pointer alignments) is chosen once
// by cuBLASLt's heuristic and cached.
#include "backend/cuda/gemm.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "backend/cuda/context.h"
#include "core/error.h"

namespace zflow::cuda {
namespace {

#define ZF_LT(call) ::zflow::cuda::check((call), #call)

// The largest power of two (up to 256) dividing the address: cuBLASLt picks kernels that
// assume an alignment, so it is told the real one.
uint32_t alignment(const void* p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 256;
  while (a > 1 && v % a != 0) a /= 2;
  return a;
}

// RAII holders for the cuBLASLt descriptors of one call.
struct Layout {
  cublasLtMatrixLayout_t h = nullptr;
  Layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int batch, int64_t stride) {
    ZF_LT(cublasLtMatrixLayoutCreate(&h, type, static_cast<uint64_t>(rows),
                                     static_cast<uint64_t>(cols), ld));
    if (batch > 1) {
      ZF_LT(cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch,
                                             sizeof(batch)));
      ZF_LT(cublasLtMatrixLayoutSetAttribute(h, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET,
                                             &stride, sizeof(stride)));
    }
  }
  ~Layout() { cublasLtMatrixLayoutDestroy(h); }
  Layout(const Layout&) = delete;
  Layout& operator=(const Layout&) = delete;
};

struct Operation {
  cublasLtMatmulDesc_t h = nullptr;
  Operation() { ZF_LT(cublasLtMatmulDescCreate(&h, CUBLAS_COMPUTE_32F, CUDA_R_32F)); }
  ~Operation() { cublasLtMatmulDescDestroy(h); }
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;
  template <typename V>
  void set(cublasLtMatmulDescAttributes_t attr, const V& value) {
    ZF_LT(cublasLtMatmulDescSetAttribute(h, attr, &value, sizeof(value)));
  }
};

struct Preference {
  cublasLtMatmulPreference_t h = nullptr;
  Preference() { ZF_LT(cublasLtMatmulPreferenceCreate(&h)); }
  ~Preference() { cublasLtMatmulPreferenceDestroy(h); }
  Preference(const Preference&) = delete;
  Preference& operator=(const Preference&) = delete;
  template <typename V>
  void set(cublasLtMatmulPreferenceAttributes_t attr, const V& value) {
    ZF_LT(cublasLtMatmulPreferenceSetAttribute(h, attr, &value, sizeof(value)));
  }
};

using ProblemKey = std::tuple<int, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool,
                              int, uint32_t, uint32_t, uint32_t, uint32_t>;

std::mutex g_cache_mutex;
// cuBLASLt's pick per problem, or none where its heuristic found no algorithm.
std::map<ProblemKey, std::optional<cublasLtMatmulAlgo_t>> g_algo_cache;

}  // namespace

bool fp8_gemm_supported(int64_t n, int64_t k) {
  return context().compute_capability >= 89 && n % 16 == 0 && k % 16 == 0;
}

void gemm(const GemmDesc& g) {
  ZF_CHECK(try_gemm(g),
           "[cuda] cuBLASLt has no algorithm for a {}{} GEMM m {} n {} k {} (batch {}, "
           "alignments {}/{}/{} bytes)",
           g.fp8 ? "FP8 -> " : "", dtype_name(g.dtype), g.m, g.n, g.k, g.batch, alignment(g.b),
           alignment(g.a), alignment(g.d));
}

bool try_gemm(const GemmDesc& g) {
  if (g.m == 0 || g.n == 0 || g.batch == 0) return true;
  ZF_CHECK(g.dtype == DType::F32 || g.dtype == DType::BF16,
           "[cuda] a GEMM runs in F32 or BF16, got {}", dtype_name(g.dtype));
  ZF_CHECK(g.k > 0, "[cuda] a GEMM needs k >= 1 (m {}, n {})", g.m, g.n);
  ZF_CHECK(!g.fp8 || (g.dtype == DType::BF16 && g.b_is_weight && g.batch == 1 &&
                      fp8_gemm_supported(g.n, g.k) && g.a_scale != nullptr),
           "[cuda] an FP8 GEMM needs sm_89+, BF16 output, a Linear weight, K and N multiples of "
           "16 and A's scale (m {}, n {}, k {})",
           g.m, g.n, g.k);
  Context& ctx = context();
  const cudaDataType_t type = g.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  // The operands' storage type; D (and C, unused with beta 0) stay in `type`.
  const cudaDataType_t in_type = g.fp8 ? CUDA_R_8F_E4M3 : type;

  Operation op;
  const cublasOperation_t trans_a = g.b_is_weight ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t trans_b = CUBLAS_OP_N;
  op.set(CUBLASLT_MATMUL_DESC_TRANSA, trans_a);
  op.set(CUBLASLT_MATMUL_DESC_TRANSB, trans_b);
  if (g.bias != nullptr) {
    op.set(CUBLASLT_MATMUL_DESC_EPILOGUE, CUBLASLT_EPILOGUE_BIAS);
    op.set(CUBLASLT_MATMUL_DESC_BIAS_POINTER, g.bias);
    if (g.fp8) op.set(CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, CUDA_R_16BF);
  }
  // cuBLASLt's B is our A: its scale is B's. The weight's scale rides in alpha.
  if (g.fp8) op.set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, g.a_scale);

  // cuBLASLt's A is our op(B)^T (n x k), its B is our A^T (k x m), its D our D^T (n x m).
  const Layout lt_a = g.b_is_weight ? Layout(in_type, g.k, g.n, g.ldb, g.batch, g.stride_b)
                                    : Layout(in_type, g.n, g.k, g.ldb, g.batch, g.stride_b);
  const Layout lt_b(in_type, g.k, g.m, g.lda, g.batch, g.stride_a);
  const Layout lt_d(type, g.n, g.m, g.ldd, g.batch, g.stride_d);

  const uint32_t align_a = alignment(g.b), align_b = alignment(g.a), align_d = alignment(g.d);
  const uint32_t align_bias = g.bias ? alignment(g.bias) : 256;
  const ProblemKey key{static_cast<int>(g.dtype) + (g.fp8 ? 1000 : 0),
                       g.m,
                       g.n,
                       g.k,
                       g.lda,
                       g.ldb,
                       g.ldd,
                       g.b_is_weight,
                       g.bias != nullptr,
                       g.batch,
                       align_a,
                       align_b,
                       align_d,
                       align_bias};
  std::optional<cublasLtMatmulAlgo_t> algo;
  {
    std::lock_guard lock(g_cache_mutex);
    auto it = g_algo_cache.find(key);
    if (it != g_algo_cache.end()) {
      algo = it->second;
    } else {
      Preference pref;
      pref.set(CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, ctx.workspace_bytes);
      pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align_a);
      pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align_b);
      pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align_d);
      pref.set(CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align_d);
      cublasLtMatmulHeuristicResult_t result{};
      int found = 0;
      ZF_LT(cublasLtMatmulAlgoGetHeuristic(ctx.lt, op.h, lt_a.h, lt_b.h, lt_d.h, lt_d.h, pref.h, 1,
                                           &result, &found));
      if (found > 0) algo = result.algo;
      g_algo_cache.emplace(key, algo);
    }
  }
  if (!algo) return false;
  const float alpha = g.fp8 ? g.alpha : 1.0f, beta = 0.0f;
  ZF_LT(cublasLtMatmul(ctx.lt, op.h, &alpha, g.b, lt_a.h, g.a, lt_b.h, &beta, g.d, lt_d.h, g.d,
                       lt_d.h, &*algo, ctx.workspace, ctx.workspace_bytes, ctx.stream));
  return true;
}

}  // namespace zflow::cuda
