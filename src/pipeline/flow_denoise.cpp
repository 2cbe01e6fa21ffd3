#include "pipeline/flow_denoise.h"

#include <chrono>
#include <memory>

#include "core/error.h"
#include "pipeline/flow_euler.h"
#include "pipeline/flow_solvers.h"

namespace zflow::pipeline {

FlowNoise sampler_noise(uint64_t seed, NormalMath math, Shape shape) {
  auto generator = std::make_shared<Generator>(seed + 1, math);
  return [generator, shape = std::move(shape)] { return generator->randn(shape); };
}

namespace {

Tensor checked_velocity(const FlowVelocity& velocity, const Tensor& latents, int step) {
  Tensor v = velocity(latents, step).contiguous();
  ZF_CHECK(v.dtype() == DType::F32 && v.shape() == latents.shape(),
           "[denoise] the model gave {} {} for latents {}", dtype_name(v.dtype()),
           shape_str(v.shape()), shape_str(latents.shape()));
  return v;
}

}  // namespace

Tensor flow_denoise(const FlowVelocity& velocity, Tensor latents, const FlowSchedule& schedule,
                    const FlowInpaint* inpaint, const RunControl& control, FlowSampler sampler,
                    const FlowNoise& noise) {
  ZF_CHECK(!is_stochastic(sampler) || noise, "[denoise] the {} sampler needs a noise source",
           flow_sampler_name(sampler));
  ZF_CHECK(latents.dtype() == DType::F32 && latents.ndim() >= 1,
           "[denoise] latents must be float32, got {} {}", dtype_name(latents.dtype()),
           shape_str(latents.shape()));
  ZF_CHECK(schedule.sigmas.size() == schedule.timesteps.size() + 1 && schedule.steps() > 0,
           "[denoise] malformed schedule: {} sigmas for {} steps", schedule.sigmas.size(),
           schedule.steps());
  latents = latents.contiguous().clone();
  const auto start = std::chrono::steady_clock::now();
  Tensor previous_estimate;  // the multistep samplers: x0 of the step before
  for (int i = 0; i < schedule.steps(); ++i) {
    if (control.stop.stop_requested()) throw Cancelled();
    const Tensor v = checked_velocity(velocity, latents, i);
    const size_t at = static_cast<size_t>(i);
    const float sigma = schedule.sigmas[at], sigma_next = schedule.sigmas[at + 1];
    const bool multistep =
        sampler == FlowSampler::kDpmPP2M || sampler == FlowSampler::kResMultistep;
    const bool wants_estimate = control.on_estimate || multistep || is_stochastic(sampler);
    const Tensor estimate = wants_estimate ? clean_estimate(latents, v, sigma) : Tensor();
    if (control.on_estimate) control.on_estimate(estimate);
    switch (sampler) {
      case FlowSampler::kEuler:
        euler_step(latents, v, sigma, sigma_next);
        break;
      case FlowSampler::kHeun:
        if (sigma_next == 0.0f || i + 1 == schedule.steps()) {  // no second call at sigma 0
          euler_step(latents, v, sigma, sigma_next);
        } else {
          Tensor predicted = latents.clone();
          euler_step(predicted, v, sigma, sigma_next);
          if (control.stop.stop_requested()) throw Cancelled();
          heun_step(latents, v, checked_velocity(velocity, predicted, i + 1), sigma, sigma_next);
        }
        break;
      case FlowSampler::kDpmPP2M: {
        const bool first = i == 0;
        dpmpp_2m_step(latents, estimate, first ? nullptr : &previous_estimate,
                      first ? sigma : schedule.sigmas[at - 1], sigma, sigma_next);
        previous_estimate = estimate;
        break;
      }
      case FlowSampler::kEulerAncestral:
      case FlowSampler::kLcm:
        if (sigma_next == 0.0f) {  // the last step lands on the clean estimate
          latents = estimate.clone();
        } else {
          const Tensor fresh = noise().contiguous();
          if (sampler == FlowSampler::kLcm)
            lcm_step(latents, estimate, fresh, sigma_next);
          else
            euler_ancestral_step(latents, estimate, fresh, sigma, sigma_next);
        }
        break;
      case FlowSampler::kResMultistep:
        if (i == 0 || sigma_next == 0.0f)
          euler_step(latents, v, sigma, sigma_next);
        else
          res_multistep_step(latents, estimate, previous_estimate, schedule.sigmas[at - 1], sigma,
                             sigma_next);
        previous_estimate = estimate;
        break;
    }
    if (inpaint) {
      const bool last = i + 1 == schedule.steps();
      const Tensor known =
          last ? inpaint->image_latents
               : scale_noise(inpaint->image_latents, inpaint->noise, schedule.sigmas[at + 1]);
      blend_masked(latents, known, inpaint->mask);
    }
    if (control.on_step) {
      const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
      control.on_step({i + 1, schedule.steps(), elapsed.count()});
    }
  }
  return latents;
}

}  // namespace zflow::pipeline
