#include "backend/cpu/gemm.h"

#include <vector>

#include "core/error.h"

namespace zflow::cpu {

namespace {

float load_b(const GemmArgs& g, int64_t row, int64_t col) {
  float v;
  const size_t index = static_cast<size_t>(row * g.ldb + col);
  to_f32(static_cast<const char*>(g.b) + index * dtype_size(g.b_dtype), g.b_dtype, &v, 1);
  return v;
}

}  // namespace

void gemm_reference(const GemmArgs& g) {
  if (dtype_is_quantized(g.b_dtype)) {
    // The definition of a quantised weight's product: dequantise it, then multiply.
    ZF_CHECK(g.trans_b && g.ldb % dtype_block_size(g.b_dtype) == 0,
             "[gemm] a {} B must be a Linear weight with whole blocks per row",
             dtype_name(g.b_dtype));
    std::vector<float> b(static_cast<size_t>(g.n * g.ldb));
    to_f32(g.b, g.b_dtype, b.data(), b.size());
    GemmArgs widened = g;
    widened.b = b.data();
    widened.b_dtype = DType::F32;
    gemm_reference(widened);
    return;
  }
  ZF_CHECK(g.b_dtype == DType::F32 || g.b_dtype == DType::BF16 || g.b_dtype == DType::F16 ||
               dtype_is_float8(g.b_dtype) || g.b_dtype == DType::I8,
           "[gemm] B dtype {} is not supported", dtype_name(g.b_dtype));
  for (int64_t i = 0; i < g.m; ++i) {
    for (int64_t j = 0; j < g.n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < g.k; ++p) {
        const float a = g.trans_a ? g.a[p * g.lda + i] : g.a[i * g.lda + p];
        const float b = g.trans_b ? load_b(g, j, p) : load_b(g, p, j);
        acc += static_cast<double>(a) * b;
      }
      float& c = g.c[i * g.ldc + j];
      c = g.alpha * static_cast<float>(acc) + (g.beta == 0.0f ? 0.0f : g.beta * c);
    }
  }
}

}  // namespace zflow::cpu
