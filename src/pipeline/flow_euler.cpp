#include "pipeline/flow_euler.h"

#include <cstring>

#include "core/error.h"

namespace zflow::pipeline {

namespace {

void check_same(const char* op, const Tensor& a, const Tensor& b) {
  ZF_CHECK(a.dtype() == DType::F32 && b.dtype() == DType::F32, "[{}] tensors must be float32", op);
  ZF_CHECK(a.shape() == b.shape(), "[{}] shapes differ: {} and {}", op, shape_str(a.shape()),
           shape_str(b.shape()));
  ZF_CHECK(a.is_contiguous() && b.is_contiguous(), "[{}] tensors must be contiguous", op);
}

}  // namespace

void euler_step(Tensor& latents, const Tensor& velocity, float sigma, float sigma_next) {
  check_same("euler_step", latents, velocity);
  const float dt = sigma_next - sigma;  // float32, as torch subtracts two float32 sigmas
  float* x = latents.data<float>();
  const float* v = velocity.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) {
    const float delta = dt * v[i];
    x[i] = x[i] + delta;
  }
}

Tensor clean_estimate(const Tensor& latents, const Tensor& velocity, float sigma) {
  check_same("clean_estimate", latents, velocity);
  Tensor out = Tensor::empty(latents.shape(), DType::F32);
  const float* x = latents.data<float>();
  const float* v = velocity.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) o[i] = x[i] - sigma * v[i];
  return out;
}

Tensor scale_noise(const Tensor& sample, const Tensor& noise, float sigma) {
  check_same("scale_noise", sample, noise);
  const float keep = 1.0f - sigma;
  Tensor out = Tensor::empty(sample.shape(), DType::F32);
  const float* s = sample.data<float>();
  const float* n = noise.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < sample.numel(); ++i) {
    const float a = sigma * n[i];
    const float b = keep * s[i];
    o[i] = a + b;
  }
  return out;
}

void blend_masked(Tensor& latents, const Tensor& known, const Tensor& mask) {
  check_same("blend_masked", latents, known);
  ZF_CHECK(latents.ndim() == 4 && mask.ndim() == 4 && mask.size(1) == 1 &&
               (mask.size(0) == 1 || mask.size(0) == latents.size(0)) &&
               mask.size(2) == latents.size(2) && mask.size(3) == latents.size(3) &&
               mask.dtype() == DType::F32 && mask.is_contiguous(),
           "[blend_masked] mask {} does not fit latents {}", shape_str(mask.shape()),
           shape_str(latents.shape()));
  const int64_t b = latents.size(0), c = latents.size(1), hw = latents.size(2) * latents.size(3);
  float* x = latents.data<float>();
  const float* k = known.data<float>();
  const float* m = mask.data<float>();  // [1 or B, hw]
  for (int64_t n = 0; n < b; ++n) {
    const float* mn = m + (mask.size(0) == 1 ? 0 : n * hw);
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t i = 0; i < hw; ++i) {
        const int64_t at = (n * c + ch) * hw + i;
        const float a = (1.0f - mn[i]) * k[at];
        const float d = mn[i] * x[at];
        x[at] = a + d;
      }
  }
}

Tensor repeat_batch(const Tensor& t, int64_t n) {
  ZF_CHECK(t.ndim() >= 1 && n >= 1, "[repeat_batch] need a tensor with a batch dim and n >= 1");
  const Tensor src = t.contiguous();
  Shape shape = src.shape();
  shape[0] *= n;
  Tensor out = Tensor::empty(shape, src.dtype());
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(static_cast<char*>(out.raw()) + i * src.nbytes(), src.raw(), src.nbytes());
  return out;
}

Tensor combine_guidance(const Tensor& both, float scale) {
  const Tensor v = both.contiguous();
  ZF_CHECK(v.dtype() == DType::F32 && v.ndim() >= 1 && v.size(0) % 2 == 0,
           "[sampling] guidance: velocities {} {} are not float32 [positives; negatives]",
           dtype_name(v.dtype()), shape_str(v.shape()));
  const int64_t batch = v.size(0) / 2;
  Shape shape = v.shape();
  shape[0] = batch;
  Tensor out = Tensor::empty(shape, DType::F32);
  const int64_t n = out.numel();
  const float* pos = v.data<float>();
  const float* neg = pos + n;
  float* dst = out.data<float>();
  for (int64_t k = 0; k < n; ++k) {
    const float difference = pos[k] - neg[k];
    const float scaled = scale * difference;
    dst[k] = neg[k] + scaled;
  }
  return out;
}

}  // namespace zflow::pipeline
