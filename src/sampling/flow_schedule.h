// Flow-matching sigma schedules, value for value as diffusers' FlowMatchEulerDiscreteScheduler
// builds them for the Z-Image, FLUX.1 and FLUX.2 pipelines (diffusers 0.42.1; facts:
// zimage.md §5, flux.md §5).
//
// A schedule of N steps holds N+1 sigmas, from 1 (pure noise) down to the terminal 0, and the N
// scheduler timesteps sigma*1000. Step i moves the latent from sigmas[i] to sigmas[i+1]:
//   x += (sigmas[i+1] - sigmas[i]) * velocity.
//
// Every builder first lays out the unshifted sigmas linspace(1, 1/N, N) and then shifts them.
// The two families build that linspace differently (torch float32 vs numpy float64), which moves
// single values by one float32 ulp, so each builder takes the spacing its pipeline uses; the
// family helpers at the bottom pick it for you.
//
// Shift, mu and strength are double because diffusers keeps them as Python floats (float64):
// rounding mu or strength to float first changes results (see img2img_start).
#pragma once

#include <cstdint>
#include <vector>

namespace zflow {

struct FlowSchedule {
  std::vector<float> sigmas;     // N+1 values, 1 first (full schedule) and 0 last
  std::vector<float> timesteps;  // N values, float32(sigmas[i] * 1000) as diffusers stores them

  int steps() const { return static_cast<int>(timesteps.size()); }

  // The schedule from step `start` on: what img2img / inpaint run after img2img_start.
  // start must be in [0, steps()).
  FlowSchedule starting_at(int start) const;
};

// How the unshifted sigmas linspace(1, 1/N, N) are computed.
enum class SigmaSpacing {
  // torch.linspace(1.0, 1/N, N) in float32 (Z-Image get_default_z_image_sigmas).
  kTorchF32,
  // np.linspace(1.0, 1/N, N) in float64, then rounded to float32 by set_timesteps (FLUX.1, FLUX.2).
  kNumpyF64,
};

// np.linspace(start, stop, n) in float64: i * step + start, the last value exactly stop (n >= 1).
std::vector<double> numpy_linspace(double start, double stop, int n);

// The N unshifted sigmas linspace(1, 1/N, N) as `spacing` computes them.
std::vector<float> linear_sigmas(int steps, SigmaSpacing spacing);

// Static shift (use_dynamic_shifting false): sigma' = s*sigma / (1 + (s-1)*sigma).
// Z-Image Turbo s = 3, Z-Image Base s = 6, FLUX.1-schnell s = 1 (no shift).
FlowSchedule static_shift(int steps, double shift, SigmaSpacing spacing);

// Dynamic exponential time shift (use_dynamic_shifting true, time_shift_type "exponential"):
// sigma' = e^mu / (e^mu + (1/sigma - 1)). FLUX.1-dev with flux1_mu, FLUX.2 with flux2_empirical_mu.
FlowSchedule dynamic_shift(int steps, double mu, SigmaSpacing spacing);

// diffusers calculate_shift: mu on the line through (base_seq, base_shift) and
// (max_seq, max_shift), not clamped. image_seq_len = packed image tokens = (H/16)*(W/16).
double flux1_mu(int64_t image_seq_len, int64_t base_seq = 256, int64_t max_seq = 4096,
                double base_shift = 0.5, double max_shift = 1.15);

// diffusers / BFL compute_empirical_mu for FLUX.2: above 4300 tokens the FLUX.1 line, otherwise
// interpolated in step count between fitted 10-step and 200-step lines.
double flux2_empirical_mu(int64_t image_seq_len, int steps);

// The step index img2img and inpaint start from (diffusers get_timesteps):
//   init = min(steps*strength, steps), start = int(max(steps - init, 0)).
// Throws when strength is outside [0, 1] or leaves no step to run (as the pipelines do).
int img2img_start(int steps, double strength);

// Value each transformer receives for scheduler timestep t (one of FlowSchedule::timesteps),
// in float32 as the pipelines compute it.
// Z-Image: (1000 - t) / 1000 = 1 - sigma; the model multiplies by t_scale 1000 inside.
float zimage_model_time(float timestep);
// FLUX.1 / FLUX.2: t / 1000 = sigma; the model multiplies by 1000 inside. diffusers first casts t
// to the latent dtype (bf16 in a bf16 pipeline) and divides in that dtype; this is the float32
// value, a bf16 caller rounds it itself.
float flux_model_time(float timestep);

// Family presets: the schedule each diffusers pipeline builds for `steps` steps.
FlowSchedule zimage_schedule(int steps, double shift);  // Turbo 3, Base 6
FlowSchedule flux1_dev_schedule(int steps, int64_t image_seq_len);
FlowSchedule flux1_schnell_schedule(int steps);
FlowSchedule flux2_schedule(int steps, int64_t image_seq_len);

}  // namespace zflow
