#include "pipeline/flow_denoise.h"

#include <chrono>

#include "core/error.h"
#include "pipeline/flow_euler.h"

namespace zflow::pipeline {

Tensor flow_denoise(const FlowVelocity& velocity, Tensor latents, const FlowSchedule& schedule,
                    const FlowInpaint* inpaint, const RunControl& control) {
  ZF_CHECK(latents.dtype() == DType::F32 && latents.ndim() >= 1,
           "[denoise] latents must be float32, got {} {}", dtype_name(latents.dtype()),
           shape_str(latents.shape()));
  ZF_CHECK(schedule.sigmas.size() == schedule.timesteps.size() + 1 && schedule.steps() > 0,
           "[denoise] malformed schedule: {} sigmas for {} steps", schedule.sigmas.size(),
           schedule.steps());
  latents = latents.contiguous().clone();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < schedule.steps(); ++i) {
    if (control.stop.stop_requested()) throw Cancelled();
    const Tensor v = velocity(latents, i).contiguous();
    ZF_CHECK(v.dtype() == DType::F32 && v.shape() == latents.shape(),
             "[denoise] the model gave {} {} for latents {}", dtype_name(v.dtype()),
             shape_str(v.shape()), shape_str(latents.shape()));
    const size_t at = static_cast<size_t>(i);
    if (control.on_estimate) control.on_estimate(clean_estimate(latents, v, schedule.sigmas[at]));
    euler_step(latents, v, schedule.sigmas[at], schedule.sigmas[at + 1]);
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
