// Linear and batched matmul on the GPU through gemm (cuBLASLt). A weight stored in another
// dtype than the activations is converted on the device first (one extra pass over the
// weight per call; load weights in the activation dtype to avoid it). GGML block-quantised
// weights are dequantised that way too (dequant.cu), into a temporary the size of one bf16
// weight: the model stays quantised in device memory. A float8 weight with
// BF16 activations on sm_89+ runs the FP8 tensor-core matmul instead: the activations are
// quantised to e4m3 per tensor (scale from their absolute maximum, as ComfyUI does for layers
// without an input scale), the product accumulates in fp32 and lands in BF16.
#include <optional>

#include "backend/cuda/context.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace zflow::cuda {
namespace {

// The weight's values (codes * scale) in the activation dtype `t`: one pass over the weight.
Tensor widen_float8(const Tensor& w, DType t) {
  Tensor out = Tensor::empty(w.shape(), t, Device::CUDA);
  check_launch(launch_fp8_dequantize(w.dtype() == DType::F8_E4M3 ? Fp8Kind::E4M3 : Fp8Kind::E5M2,
                                     static_cast<const uint8_t*>(w.raw()), w.scale(), act_of(out),
                                     out.raw(), w.numel(), context().stream),
               "fp8 dequantize_kernel");
  return out;
}

// The product both linear paths run: d[m, n] = a[m, k] @ w[n, k]^T (+ bias[n]), packed rows.
GemmDesc linear_gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, const void* w,
                     void* d, const Tensor& bias) {
  GemmDesc g;
  g.dtype = dtype;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = a;
  g.lda = k;
  g.b = w;
  g.ldb = k;
  g.b_is_weight = true;
  g.d = d;
  g.ldd = n;
  g.bias = bias.defined() ? bias.raw() : nullptr;
  return g;
}

// y[m, n] = x[m, k] @ w^T * scale (+ b) with x quantised to e4m3 here; nothing where cuBLASLt
// has no FP8 algorithm for the shape (the caller then widens the weight).
std::optional<Tensor> linear_fp8(const Tensor& x, const Tensor& w, const Tensor& b, int64_t m,
                                 Shape out_shape) {
  const int64_t n = w.size(0), k = w.size(1);
  Tensor xq = Tensor::empty({m, k}, DType::U8, Device::CUDA);
  Tensor scratch = Tensor::empty({2}, DType::F32, Device::CUDA);  // amax, then x's scale
  float* amax = static_cast<float*>(scratch.raw());
  check_launch(launch_fp8_quantize(act_of(x), x.raw(), m * k, amax, amax + 1,
                                   static_cast<uint8_t*>(xq.raw()), context().stream),
               "fp8 quantize_kernel");
  Tensor y = Tensor::empty(out_shape, DType::BF16, Device::CUDA);
  const Tensor bc = b.defined() ? b.to(DType::BF16) : Tensor{};
  GemmDesc g = linear_gemm(DType::BF16, m, n, k, xq.raw(), w.raw(), y.raw(), bc);
  g.fp8 = true;
  g.a_scale = amax + 1;
  g.alpha = w.scale();
  if (!try_gemm(g)) return std::nullopt;
  return y;
}

}  // namespace

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
  if (w.dtype() == DType::F8_E4M3 && t == DType::BF16 && fp8_gemm_supported(n, k))
    if (std::optional<Tensor> y = linear_fp8(x, w, b, m, out_shape)) return std::move(*y);
  Tensor y = Tensor::empty(out_shape, t, Device::CUDA);
  const Tensor wc = dtype_is_float8(w.dtype()) ? widen_float8(w, t) : w.to(t);
  const Tensor bc = b.defined() ? b.to(t) : Tensor{};
  gemm(linear_gemm(t, m, n, k, x.raw(), wc.raw(), y.raw(), bc));
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
