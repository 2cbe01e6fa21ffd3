#include "pipeline/flow_solvers.h"

#include <cmath>

#include "core/error.h"

namespace zflow::pipeline {

namespace {

void check_like(const char* op, const Tensor& latents, const Tensor& other) {
  ZF_CHECK(latents.dtype() == DType::F32 && other.dtype() == DType::F32 &&
               latents.shape() == other.shape() && latents.is_contiguous() && other.is_contiguous(),
           "[{}] needs contiguous float32 tensors of one shape, got {} {} and {} {}", op,
           dtype_name(latents.dtype()), shape_str(latents.shape()), dtype_name(other.dtype()),
           shape_str(other.shape()));
}

// k-diffusion's t_fn: -log(sigma) on a float32 tensor.
float lambda_of(float sigma) {
  return -std::log(sigma);
}

}  // namespace

void heun_step(Tensor& latents, const Tensor& v, const Tensor& v_next, float sigma,
               float sigma_next) {
  check_like("heun_step", latents, v);
  check_like("heun_step", latents, v_next);
  const float dt = sigma_next - sigma;
  float* x = latents.data<float>();
  const float* d = v.data<float>();
  const float* d2 = v_next.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) {
    const float slope = (d[i] + d2[i]) / 2.0f;
    const float delta = slope * dt;
    x[i] = x[i] + delta;
  }
}

void dpmpp_2m_step(Tensor& latents, const Tensor& denoised, const Tensor* previous,
                   float sigma_prev, float sigma, float sigma_next) {
  check_like("dpmpp_2m_step", latents, denoised);
  float* x = latents.data<float>();
  const float* d = denoised.data<float>();
  const int64_t n = latents.numel();
  if (sigma_next == 0.0f) {  // t_next is infinite: the step lands on x0 itself
    for (int64_t i = 0; i < n; ++i) x[i] = d[i];
    return;
  }
  const float t = lambda_of(sigma), t_next = lambda_of(sigma_next);
  const float h = t_next - t;
  const float keep = std::exp(-t_next) / std::exp(-t);
  const float toward = std::expm1(-h);
  if (previous == nullptr) {
    for (int64_t i = 0; i < n; ++i) {
      const float a = keep * x[i];
      const float b = toward * d[i];
      x[i] = a - b;
    }
    return;
  }
  check_like("dpmpp_2m_step", latents, *previous);
  const float h_last = t - lambda_of(sigma_prev);
  const float r = h_last / h;
  const float old_weight = 1.0f / (2.0f * r);
  const float new_weight = 1.0f + old_weight;
  const float* old = previous->data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const float mixed = new_weight * d[i] - old_weight * old[i];
    const float a = keep * x[i];
    const float b = toward * mixed;
    x[i] = a - b;
  }
}

void euler_ancestral_step(Tensor& latents, const Tensor& denoised, const Tensor& noise, float sigma,
                          float sigma_next) {
  check_like("euler_ancestral_step", latents, denoised);
  check_like("euler_ancestral_step", latents, noise);
  // ComfyUI's float32 scalars: eta = 1 keeps downstep_ratio = 1 + (sigma' / sigma - 1).
  const float downstep_ratio = 1.0f + (sigma_next / sigma - 1.0f);
  const float sigma_down = sigma_next * downstep_ratio;
  const float alpha_next = 1.0f - sigma_next, alpha_down = 1.0f - sigma_down;
  const float renoise =
      std::sqrt(sigma_next * sigma_next -
                sigma_down * sigma_down * (alpha_next * alpha_next) / (alpha_down * alpha_down));
  const float ratio = sigma_down / sigma, rescale = alpha_next / alpha_down;
  float* x = latents.data<float>();
  const float* d = denoised.data<float>();
  const float* n = noise.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) {
    const float down = ratio * x[i] + (1.0f - ratio) * d[i];
    x[i] = rescale * down + n[i] * renoise;
  }
}

void lcm_step(Tensor& latents, const Tensor& denoised, const Tensor& noise, float sigma_next) {
  check_like("lcm_step", latents, denoised);
  check_like("lcm_step", latents, noise);
  float* x = latents.data<float>();
  const float* d = denoised.data<float>();
  const float* n = noise.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) {
    const float a = sigma_next * n[i];
    const float b = (1.0f - sigma_next) * d[i];
    x[i] = a + b;
  }
}

void res_multistep_step(Tensor& latents, const Tensor& denoised, const Tensor& previous,
                        float sigma_prev, float sigma, float sigma_next) {
  check_like("res_multistep_step", latents, denoised);
  check_like("res_multistep_step", latents, previous);
  const float t = lambda_of(sigma), t_next = lambda_of(sigma_next), t_prev = lambda_of(sigma_prev);
  const float h = t_next - t;
  const float c2 = (t_prev - t) / h;
  const float phi1 = std::expm1(-h) / -h;
  const float phi2 = (phi1 - 1.0f) / -h;
  // torch.nan_to_num(..., nan=0): a zero-length step leaves 0 / 0 behind.
  const auto finite_or_zero = [](float v) { return std::isnan(v) ? 0.0f : v; };
  const float b1 = finite_or_zero(phi1 - phi2 / c2), b2 = finite_or_zero(phi2 / c2);
  const float keep = std::exp(-h);
  float* x = latents.data<float>();
  const float* d = denoised.data<float>();
  const float* old = previous.data<float>();
  for (int64_t i = 0; i < latents.numel(); ++i) {
    const float a = keep * x[i];
    const float mixed = b1 * d[i] + b2 * old[i];
    x[i] = a + h * mixed;
  }
}

}  // namespace zflow::pipeline
