// The element-wise updates of the higher-order samplers (sampling/flow_sampler.h), in float32 with
// the operation order of k-diffusion 0.1.1 on torch tensors, so trajectories match it to float32
// rounding. The Euler update and x0 = x - sigma * v are in flow_euler.h.
#pragma once

#include "core/tensor.h"

namespace zflow::pipeline {

// Heun's corrector, in place: latents += (sigma_next - sigma) * (v + v_next) / 2, where v is the
// velocity at (latents, sigma) and v_next the one at the Euler prediction (x2, sigma_next).
void heun_step(Tensor& latents, const Tensor& v, const Tensor& v_next, float sigma,
               float sigma_next);

// DPM-Solver++(2M), in place. With t = -log sigma and h = t_next - t:
//   x' = (e^-t_next / e^-t) x - expm1(-h) D
// where D is `denoised` (x0 at sigma) on a first-order step (`previous` null, or sigma_next 0:
// then x' = D), and otherwise D = (1 + 1/(2r)) denoised - 1/(2r) previous, r = h_last / h with
// h_last = t - t_prev, `previous` the x0 of the step before at sigma_prev.
void dpmpp_2m_step(Tensor& latents, const Tensor& denoised, const Tensor* previous,
                   float sigma_prev, float sigma, float sigma_next);

// ComfyUI's Euler ancestral for flow models (sample_euler_ancestral_RF, eta 1), in place, for
// sigma_next > 0: with sigma_d = sigma_next * (sigma_next / sigma),
//   x = (sigma_d / sigma) x + (1 - sigma_d / sigma) D
//   x = ((1 - sigma_next) / (1 - sigma_d)) x + noise * sqrt(sigma_next^2 - sigma_d^2 (1 -
//       sigma_next)^2 / (1 - sigma_d)^2)
// (the caller lands on D itself when sigma_next is 0).
void euler_ancestral_step(Tensor& latents, const Tensor& denoised, const Tensor& noise, float sigma,
                          float sigma_next);

// ComfyUI's LCM step on a flow model, in place: x = sigma_next * noise + (1 - sigma_next) * D
// (D itself when sigma_next is 0).
void lcm_step(Tensor& latents, const Tensor& denoised, const Tensor& noise, float sigma_next);

// ComfyUI's RES multistep (eta 0), in place, with t = -log sigma and h = t_next - t:
//   x' = e^-h x + h (b1 D + b2 D_prev),  b1 = phi1(-h) - phi2(-h) / c2,  b2 = phi2(-h) / c2,
//   c2 = (t_prev - t) / h,  phi1(z) = expm1(z) / z,  phi2(z) = (phi1(z) - 1) / z
// where D is `denoised` (x0 at sigma) and D_prev `previous` (x0 at sigma_prev). The caller takes
// Euler steps where there is no previous x0 or sigma_next is 0.
void res_multistep_step(Tensor& latents, const Tensor& denoised, const Tensor& previous,
                        float sigma_prev, float sigma, float sigma_next);

}  // namespace zflow::pipeline
