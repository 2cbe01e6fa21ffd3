// A model folder's scheduler/scheduler_config.json (diffusers 0.42.1
// FlowMatchEulerDiscreteScheduler) and the sigma schedule it makes for the Z-Image, FLUX.1 and
// FLUX.2 pipelines (facts: zimage.md §5, flux.md §5.2):
//   use_dynamic_shifting true:  sigma' = e^mu / (e^mu + (1/sigma - 1)), with mu on the line through
//     (base_image_seq_len, base_shift) and (max_image_seq_len, max_shift) at the image's token
//     count (FLUX.2: its empirical mu)
//   use_dynamic_shifting false: sigma' = shift * sigma / (1 + (shift - 1) * sigma)
//   then use_karras_sigmas / use_exponential_sigmas / use_beta_sigmas respace the result
//   (sampling/sigma_schedule.h), which is what a request's "simple" schedule means for that model.
// A field the file leaves out takes the scheduler class's default, as diffusers does. Without a
// folder (single files) the release configs serve: FLUX.1-dev dynamic 0.5 / 1.15 over 256 / 4096
// tokens, schnell static shift 1; Z-Image static with its variant's shift.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>

#include "sampling/flow_schedule.h"
#include "sampling/sigma_schedule.h"

namespace zflow::pipeline {

struct SchedulerConfig {
  bool use_dynamic_shifting = false;  // the scheduler class's defaults
  double shift = 1.0;
  double base_shift = 0.5;
  double max_shift = 1.15;
  int64_t base_image_seq_len = 256;
  int64_t max_image_seq_len = 4096;
  SigmaSchedule respacing = SigmaSchedule::kSimple;  // use_karras_sigmas, ...: at most one
};

// The schedule a request's choice gives on a model with `config`: its own respacing for
// kSimple, the choice otherwise (on the same shifted sigmas).
inline SigmaSchedule effective_schedule(const SchedulerConfig& config, SigmaSchedule requested) {
  return requested == SigmaSchedule::kSimple ? config.respacing : requested;
}

// The FLUX.1-dev / FLUX.1-schnell releases' scheduler_config.json.
SchedulerConfig flux1_release_scheduler(bool dev);

// Reads a scheduler_config.json. Errors ("[family] file: field ...") name the file and the field:
// a value of the wrong type or out of range (shift <= 0, sequence lengths that are not whole
// numbers >= 1 or not increasing, two respacings), and any setting of the scheduler class that
// would change the schedule but zflow does not run (another _class_name, num_train_timesteps other
// than 1000, shift_terminal, linear time shift, invert_sigmas, stochastic_sampling).
SchedulerConfig read_scheduler_config(const std::filesystem::path& path, const char* family);

// Z-Image's schedule (its pipelines build the sigmas with torch's float32 linspace and pass mu
// from the config's line): static at `shift` when one is given or the config does not shift
// dynamically (then at the config's shift), else dynamic for `image_seq_len` tokens.
FlowSchedule zimage_config_schedule(const SchedulerConfig& config, int steps,
                                    std::optional<double> shift, int64_t image_seq_len);

// The schedule of `steps` steps for an image of `image_seq_len` packed tokens ((H/16) * (W/16)).
FlowSchedule flux1_schedule(const SchedulerConfig& config, int steps, int64_t image_seq_len);

// FLUX.2's pipelines pass their own mu, the empirical one of the token count and the step count
// (flux2_empirical_mu), which a scheduler with dynamic shifting uses in place of its line; with
// dynamic shifting off it keeps its static shift. The klein releases' config shifts dynamically.
SchedulerConfig flux2_release_scheduler();
FlowSchedule flux2_klein_schedule(const SchedulerConfig& config, int steps, int64_t image_seq_len);

}  // namespace zflow::pipeline
