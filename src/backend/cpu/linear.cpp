// y[M, N] = x[M, K] @ w[N, K]^T + b[N] through gemm, w in its stored dtype; a scaled float8
// weight's scale is gemm's alpha (one multiply per output instead of one per weight value).
#include <algorithm>

#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

void linear_product(const float* x, int64_t m, const Tensor& w, float* out) {
  const int64_t n = w.size(0), k = w.size(1);
  if (m == 0 || n == 0) return;
  if (k == 0) {
    std::fill(out, out + m * n, 0.0f);
    return;
  }
  GemmArgs g;
  g.trans_b = true;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = x;
  g.lda = k;
  g.b = w.raw();
  g.b_dtype = w.dtype();
  g.ldb = k;
  g.c = out;
  g.ldc = n;
  g.alpha = w.scale();
  gemm(g);
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  if (!w.row_scales().empty()) return linear_int8_rows(x, w, b);
  const int64_t n = w.size(0);
  const int64_t m = shape_numel(std::span(x.shape()).first(x.shape().size() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = n;
  Tensor y = Tensor::empty(out_shape, DType::F32);
  float* out = y.data<float>();  // [m, n]
  linear_product(x.data<float>(), m, w, out);
  if (b.defined() && m > 0) {
    const std::vector<float> bias = widen(b);
    parallel_for(
        m,
        [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i)
            for (int64_t j = 0; j < n; ++j) out[i * n + j] += bias[j];
        },
        64);
  }
  return y;
}

}  // namespace zflow::cpu
