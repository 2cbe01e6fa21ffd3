// Batched a[..., M, K] @ b[..., K, N]: one gemm per leading index.
#include "backend/cpu/gemm.h"
#include "backend/cpu/kernels.h"

namespace zflow::cpu {

Tensor matmul(const Tensor& a, const Tensor& b) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape out_shape = a.shape();
  out_shape.back() = n;
  Tensor y = Tensor::zeros(out_shape, DType::F32);
  const int64_t batches = m * n == 0 ? 0 : y.numel() / (m * n);
  if (k == 0) return y;
  const auto* pb = static_cast<const char*>(b.raw());
  const size_t b_stride = static_cast<size_t>(k * n) * dtype_size(b.dtype());
  for (int64_t i = 0; i < batches; ++i) {
    GemmArgs g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = a.data<float>() + i * m * k;
    g.lda = k;
    g.b = pb + i * b_stride;
    g.b_dtype = b.dtype();
    g.ldb = n;
    g.c = y.data<float>() + i * m * n;
    g.ldc = n;
    gemm(g);
  }
  return y;
}

}  // namespace zflow::cpu
