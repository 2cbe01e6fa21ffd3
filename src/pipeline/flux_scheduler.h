// FLUX.1's sigma schedule as its FlowMatchEulerDiscreteScheduler config sets it (diffusers 0.42.1
// FluxPipeline and its img2img / inpaint variants; facts: flux.md §5.2):
//   use_dynamic_shifting true:  sigma' = e^mu / (e^mu + (1/sigma - 1)), with mu on the line through
//     (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift) at the image's token
//     count
//   use_dynamic_shifting false: sigma' = shift * sigma / (1 + (shift - 1) * sigma)
// A diffusers folder's scheduler/scheduler_config.json gives the values; a field it leaves out
// takes the scheduler class's default, as diffusers does. Without a folder (single files) the
// release configs serve: dev dynamic 0.5 / 1.15 over 256 / 4096 tokens, schnell static shift 1.
#pragma once

#include <cstdint>
#include <filesystem>

#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

struct FluxSchedulerConfig {
  bool use_dynamic_shifting = false;  // the scheduler class's defaults
  double shift = 1.0;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;
};

// The FLUX.1-dev / FLUX.1-schnell releases' scheduler_config.json.
FluxSchedulerConfig flux1_release_scheduler(bool dev);

// Reads a scheduler_config.json. Errors name the file and the field: a value of the wrong type or
// out of range (shift <= 0, sequence lengths that are not whole numbers >= 1 or not increasing),
// and any setting of the scheduler class that would change the schedule but zflow does not run
// (another _class_name, num_train_timesteps other than 1000, shift_terminal, Karras / exponential
// / beta sigmas, linear time shift, invert_sigmas, stochastic_sampling).
FluxSchedulerConfig read_flux_scheduler_config(const std::filesystem::path& path);

// The schedule of `steps` steps for an image of `image_seq_len` packed tokens ((H/16) * (W/16)).
FlowSchedule flux1_schedule(const FluxSchedulerConfig& config, int steps, int64_t image_seq_len);

// FLUX.2's pipelines pass their own mu, the empirical one of the token count and the step count
// (flux2_empirical_mu), which a scheduler with dynamic shifting uses in place of its line; with
// dynamic shifting off it keeps its static shift. The klein releases' config shifts dynamically.
FluxSchedulerConfig flux2_release_scheduler();
FlowSchedule flux2_klein_schedule(const FluxSchedulerConfig& config, int steps,
                                  int64_t image_seq_len);

}  // namespace zflow::pipeline
