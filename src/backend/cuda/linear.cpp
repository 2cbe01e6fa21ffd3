// Linear and batched matmul on the GPU through gemm (cuBLASLt). A weight stored in another
// dtype than the activations is converted on the device first (one extra pass over the
// weight per call; load weights in the activation dtype to avoid it).
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace zflow::cuda {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const DType t = x.dtype();
  const int64_t n = w.size(0), k = w.size(1);
  const int64_t m = k == 0 ? 0 : x.numel() / k;
  Shape out_shape = x.shape();
  out_shape.back() = n;
  if (k == 0) {
    ZF_CHECK(!b.defined(), "[linear] K = 0 with a bias is not supported on the GPU");
    return Tensor::zeros(out_shape, t, Device::CUDA);
  }
  Tensor y = Tensor::empty(out_shape, t, Device::CUDA);
  const Tensor wc = w.to(t);
  const Tensor bc = b.defined() ? b.to(t) : Tensor{};
  GemmDesc g;
  g.dtype = t;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = x.raw();
  g.lda = k;
  g.b = wc.raw();
  g.ldb = k;
  g.b_is_weight = true;
  g.d = y.raw();
  g.ldd = n;
  g.bias = bc.defined() ? bc.raw() : nullptr;
  gemm(g);
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const DType t = a.dtype();
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape out_shape = a.shape();
  out_shape.back() = n;
  if (k == 0) return Tensor::zeros(out_shape, t, Device::CUDA);
  Tensor y = Tensor::empty(out_shape, t, Device::CUDA);
  const int64_t batches = m * n == 0 ? 0 : y.numel() / (m * n);
  ZF_CHECK(batches < (int64_t{1} << 31), "[matmul] {} products is more than one call takes",
           batches);
  const Tensor bc = b.to(t);
  GemmDesc g;
  g.dtype = t;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a.raw();
  g.lda = k;
  g.b = bc.raw();
  g.ldb = n;
  g.d = y.raw();
  g.ldd = n;
  g.batch = static_cast<int>(batches);
  g.stride_a = m * k;
  g.stride_b = k * n;
  g.stride_d = m * n;
  gemm(g);
  return y;
}

}  // namespace zflow::cuda
