// The element-wise pieces of flow-matching sampling, in float32 with the operation order of
// diffusers' FlowMatchEulerDiscreteScheduler (0.42.1) so results match it bit for bit:
//   step:        x' = x + (sigma_next - sigma) * model_output
//   scale_noise: x  = sigma * noise + (1 - sigma) * sample
// and the per-step inpaint blend of ZImageInpaintPipeline: x = (1 - m) * known + m * x.
#pragma once

#include "core/tensor.h"

namespace zflow::pipeline {

// In place: latents += (sigma_next - sigma) * velocity, where velocity is the scheduler's
// model_output (for Z-Image, the NEGATED transformer output). Same shape, float32.
void euler_step(Tensor& latents, const Tensor& velocity, float sigma, float sigma_next);

// The clean sample the velocity points at: latents - sigma * velocity (x0 of x = sigma * noise +
// (1 - sigma) * x0 with velocity noise - x0). A new tensor, float32; what previews decode.
Tensor clean_estimate(const Tensor& latents, const Tensor& velocity, float sigma);

// sigma * noise + (1 - sigma) * sample, a new tensor (same shapes, float32).
Tensor scale_noise(const Tensor& sample, const Tensor& noise, float sigma);

// In place: latents = (1 - mask) * known + mask * latents, mask [1 or B, 1, h, w] broadcast over
// the batch and channels of latents / known [B, C, h, w].
void blend_masked(Tensor& latents, const Tensor& known, const Tensor& mask);

// Classifier-free guidance on one forward over [positives; negatives]: velocities [2B, ...] ->
// [B, ...] with neg + scale * (pos - neg), in float32 in diffusers' operation order (FLUX.1's
// true CFG, FLUX.2 klein base's CFG).
Tensor combine_guidance(const Tensor& both, float scale);

// [n * B, ...]: `t` repeated n times along dim 0 (torch.cat([t] * n)).
Tensor repeat_batch(const Tensor& t, int64_t n);

}  // namespace zflow::pipeline
