// The token-sequence ops of backend/ops.h (gated residuals, concatenation):
// argument checks, then a plain CPU loop (memory bound; the GEMMs around them dominate) or the
// CUDA kernel (concat: one 2-D device copy per part).
#include <cstring>

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

Tensor concat(const std::vector<Tensor>& parts, int dim) {
  ZF_CHECK(!parts.empty(), "[concat] no tensors");
  const Tensor& first = parts[0];
  ZF_CHECK(first.defined(), "[concat] undefined input");
  const int rank = first.ndim();
  ZF_CHECK(dim >= -rank && dim < rank, "[concat] dim {} is out of range for {}", dim,
           shape_str(first.shape()));
  if (dim < 0) dim += rank;
  Shape shape = first.shape();
  shape[static_cast<size_t>(dim)] = 0;
  const Device dev = first.device();
  for (const Tensor& p : parts) {
    ZF_CHECK(p.defined(), "[concat] undefined input");
    ZF_CHECK(p.device() == dev,
             "[concat] inputs are on different devices ({} and {}); move them with "
             "Tensor::to(Device)",
             device_name(dev), device_name(p.device()));
    ZF_CHECK(p.dtype() == first.dtype() && p.ndim() == rank, "[concat] {} {} does not match {} {}",
             dtype_name(p.dtype()), shape_str(p.shape()), dtype_name(first.dtype()),
             shape_str(first.shape()));
    for (int d = 0; d < rank; ++d)
      ZF_CHECK(d == dim || p.size(d) == first.size(d),
               "[concat] shapes {} and {} differ outside dim {}", shape_str(p.shape()),
               shape_str(first.shape()), dim);
    shape[static_cast<size_t>(dim)] += p.size(dim);
  }
  if (dev == Device::CUDA) {
    std::vector<Tensor> packed;
    for (const Tensor& p : parts) packed.push_back(p.contiguous());
    ZF_DISPATCH_CUDA(dev, "concat", cuda::concat(packed, dim, shape));
  }
  // Each part is a run of `outer` blocks of (its size along dim) x inner elements.
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= shape[static_cast<size_t>(d)];
  for (int d = dim + 1; d < rank; ++d) inner *= shape[static_cast<size_t>(d)];
  Tensor y = Tensor::empty(shape, first.dtype());
  const size_t elem = dtype_size(first.dtype());
  const size_t out_block = static_cast<size_t>(shape[static_cast<size_t>(dim)] * inner) * elem;
  size_t at = 0;
  for (const Tensor& p : parts) {
    const Tensor c = p.contiguous();
    const size_t block = static_cast<size_t>(c.size(dim) * inner) * elem;
    const char* src = static_cast<const char*>(c.raw());
    char* dst = static_cast<char*>(y.raw()) + at;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(dst + static_cast<size_t>(o) * out_block, src + static_cast<size_t>(o) * block,
                  block);
    at += block;
  }
  return y;
}

}  // namespace zflow::ops
