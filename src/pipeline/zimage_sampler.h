// The Z-Image denoising loop (diffusers 0.42.1 ZImagePipeline.__call__ step 6, and the same loop
// in the img2img and inpaint pipelines; facts: zimage.md §5.3-5.5), independent of how the
// transformer is implemented so it can be tested with a stand-in model.
//
// Per step i (model time t = (1000 - timestep_i) / 1000 = 1 - sigma_i):
//   g = guidance_for_step(t); with g > 0 ONE batched forward over
//       [latents; latents] with captions [pos_1..pos_B, neg_1..neg_B]
//   and otherwise a forward over latents with the positive captions only;
//   pred_j = apply_zimage_cfg(out_j, out_{B+j}) (or out_j), velocity = -pred;
//   latents moved to sigma_{i+1} by the sampler (flow_denoise.h)  (float32 throughout)
//   inpaint: latents = (1 - m) * known + m * latents, where known is
//       scale_noise(image_latents, noise, sigma_{i+1}) and the clean image_latents on the last
//       step.
#pragma once

#include <functional>
#include <span>
#include <vector>

#include "core/tensor.h"
#include "pipeline/flow_denoise.h"
#include "pipeline/run_control.h"
#include "pipeline/zimage_guidance.h"
#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

// A sample's caption: its segments [L_j, cap_dim], one for the text-to-image models; Omni has
// one per image and more (models/zimage_dit.h forward_omni).
using ZImageCaption = std::vector<Tensor>;

// The transformer as the loop calls it: latents [N, 16, h, w] float32, N model times, N captions;
// returns the raw output [N, 16, h, w] float32 (x0 - eps, NOT yet negated).
using ZImageDenoiser = std::function<Tensor(const Tensor& latents, std::span<const float> t,
                                            const std::vector<ZImageCaption>& captions)>;

// Inpainting's per-step blend inputs (mask [1, 1, h, w], image_latents and noise [B, 16, h, w]).
using ZImageInpaint = FlowInpaint;

// Runs every step of `schedule` (already cut to the img2img start: sigmas[0] is where latents
// are) on latents [B, 16, h, w] and returns the final latents. positive holds B captions;
// negative holds B captions whenever guidance.scale > 0. Throws Cancelled when control.stop is
// requested before a step.
Tensor zimage_denoise(const ZImageDenoiser& model, Tensor latents, const FlowSchedule& schedule,
                      const std::vector<ZImageCaption>& positive,
                      const std::vector<ZImageCaption>& negative, const ZImageGuidance& guidance,
                      const ZImageInpaint* inpaint, const RunControl& control,
                      FlowSampler sampler = FlowSampler::kEuler, const FlowNoise& noise = {});

}  // namespace zflow::pipeline
