// The Z-Image modulation ops of backend/ops.h: argument checks, then a plain CPU loop
// (memory bound; the GEMMs around them dominate) or the CUDA kernel.
#include "backend/dispatch.h"
#include "backend/ops.h"
#include "core/error.h"

namespace zflow::ops {
namespace {

// Returns the device of x and v.
Device check_tokens_and_vector(const char* op, const Tensor& x, const Tensor& v) {
  ZF_CHECK(x.defined() && v.defined(), "[{}] undefined input", op);
  const Device dev = detail::common_device(op, {&x, &v});
  detail::require_activation(op, "x", x);
  detail::require_same_dtype(op, "the per-sample vector", v, x);
  ZF_CHECK(x.ndim() == 3 && v.ndim() == 2 && v.size(0) == x.size(0) && v.size(1) == x.size(2),
           "[{}] x {} must be [B, L, D] and the vector {} [B, D]", op, shape_str(x.shape()),
           shape_str(v.shape()));
  return dev;
}

}  // namespace

Tensor scale_tokens(const Tensor& x_in, const Tensor& scale_in) {
  const Device dev = check_tokens_and_vector("scale_tokens", x_in, scale_in);
  ZF_DISPATCH_CUDA(dev, "scale_tokens",
                   cuda::scale_tokens(x_in.contiguous(), scale_in.contiguous()));
  const Tensor x = x_in.contiguous(), s = scale_in.contiguous();
  const int64_t b = x.size(0), l = x.size(1), d = x.size(2);
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const float* sp = s.data<float>() + i * d;
    for (int64_t t = 0; t < l; ++t) {
      const int64_t row = (i * l + t) * d;
      for (int64_t c = 0; c < d; ++c) yp[row + c] = xp[row + c] * sp[c];
    }
  }
  return y;
}

Tensor add_gated(const Tensor& x_in, const Tensor& gate_in, const Tensor& r_in) {
  const Device dev = check_tokens_and_vector("add_gated", x_in, gate_in);
  ZF_CHECK(r_in.defined() && r_in.dtype() == x_in.dtype() && r_in.shape() == x_in.shape() &&
               r_in.device() == dev,
           "[add_gated] residual {} {} must be {} of x's shape {} on x's device",
           dtype_name(r_in.dtype()), shape_str(r_in.shape()), dtype_name(x_in.dtype()),
           shape_str(x_in.shape()));
  ZF_DISPATCH_CUDA(dev, "add_gated",
                   cuda::add_gated(x_in.contiguous(), gate_in.contiguous(), r_in.contiguous()));
  const Tensor x = x_in.contiguous(), g = gate_in.contiguous(), r = r_in.contiguous();
  const int64_t b = x.size(0), l = x.size(1), d = x.size(2);
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* xp = x.data<float>();
  const float* rp = r.data<float>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < b; ++i) {
    const float* gp = g.data<float>() + i * d;
    for (int64_t t = 0; t < l; ++t) {
      const int64_t row = (i * l + t) * d;
      for (int64_t c = 0; c < d; ++c) yp[row + c] = xp[row + c] + gp[c] * rp[row + c];
    }
  }
  return y;
}

}  // namespace zflow::ops
