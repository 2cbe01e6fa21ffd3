// The flow-matching sampling loop every family's pipeline runs (diffusers 0.42.1: the denoising
// loop of ZImagePipeline, FluxPipeline and their img2img / inpaint variants), independent of the
// model so it can be tested with a stand-in. Per step i:
//   v = velocity(latents, i)                               (the scheduler's model_output)
//   latents moved from sigma_i to sigma_{i+1} by the sampler: Euler
//     latents += (sigma_{i+1} - sigma_i) * v (float32, flow_euler.h), or Heun / DPM++ 2M
//     (flow_solvers.h); Heun asks velocity(x2, i + 1) for its second call
//   inpaint: latents = (1 - m) * known + m * latents, known = scale_noise(image_latents, noise,
//            sigma_{i+1}), or the clean image_latents after the last step
//   control.on_step after the step; control.stop checked before it (throws Cancelled);
//   control.on_estimate, when set, gets x0 = latents - sigma_i * v before the update.
#pragma once

#include <functional>

#include "core/rng.h"
#include "core/tensor.h"
#include "pipeline/run_control.h"
#include "sampling/flow_sampler.h"
#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

// Inpainting's per-step blend inputs, in the latent layout the loop runs in [B, C, h, w].
struct FlowInpaint {
  Tensor mask;           // [1 or B, 1, h, w], 1 = repaint
  Tensor image_latents;  // [B, C, h, w], the normalised latents of the init image
  Tensor noise;          // [B, C, h, w], the noise the start latents were made with
};

// The velocity for `latents` at step `step` (model time from schedule.timesteps[step]): float32,
// latents' shape.
using FlowVelocity = std::function<Tensor(const Tensor& latents, int step)>;

// Fresh standard normal noise of the latents' shape (float32), for the stochastic samplers.
using FlowNoise = std::function<Tensor()>;

// The noise the pipelines give a stochastic sampler: torch.randn of `shape` from a generator
// seeded seed + 1, continued step after step (ComfyUI's noise sampler on a CPU).
FlowNoise sampler_noise(uint64_t seed, NormalMath math, Shape shape);

// Runs every step of `schedule` (already cut to the img2img start: sigmas[0] is where latents
// are) with `sampler` and returns the final latents.
Tensor flow_denoise(const FlowVelocity& velocity, Tensor latents, const FlowSchedule& schedule,
                    const FlowInpaint* inpaint, const RunControl& control,
                    FlowSampler sampler = FlowSampler::kEuler, const FlowNoise& noise = {});

}  // namespace zflow::pipeline
