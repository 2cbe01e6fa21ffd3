// The sigma spacings a user can pick in place of the model's own (the "scheduler" of ComfyUI and
// stable-diffusion.cpp, A1111's "Schedule type"), computed as diffusers 0.42.1's
// FlowMatchEulerDiscreteScheduler does with use_karras_sigmas, use_exponential_sigmas and
// use_beta_sigmas: the model's shifted schedule is built first, then N new sigmas are spaced
// between its first and last value (float64, rounded to float32), the timesteps become
// float32(sigma) * 1000 and the terminal 0 is appended again.
//
// On a flow model the spacing keeps the shifted schedule's ends: 1 and shift(1/N), not ComfyUI's
// table ends (its karras on Z-Image starts lower), which is why the names follow diffusers'.
#pragma once

#include <optional>
#include <string_view>

#include "sampling/flow_schedule.h"

namespace zflow {

enum class SigmaSchedule {
  kSimple,       // the model's schedule as it is (linear in sigma, then shifted)
  kKarras,       // (max^(1/7) + ramp * (min^(1/7) - max^(1/7)))^7, Karras et al. 2022
  kExponential,  // exp(linspace(log max, log min)): uniform in log sigma
  kBeta,         // min + (max - min) * BetaPPF(1 - ramp; 0.6, 0.6), "Beta sampling is all you need"
};

// Every schedule, in the order lists show them.
inline constexpr SigmaSchedule kSigmaSchedules[] = {SigmaSchedule::kSimple, SigmaSchedule::kKarras,
                                                    SigmaSchedule::kExponential,
                                                    SigmaSchedule::kBeta};

// The name the CLI, the server and the image record use: simple, karras, exponential, beta.
std::string_view sigma_schedule_name(SigmaSchedule schedule);

// A1111's label: Simple, Karras, Exponential, Beta.
std::string_view sigma_schedule_label(SigmaSchedule schedule);

// Reads a name case-insensitively; also A1111's "Automatic" and diffusers' "default" for simple.
std::optional<SigmaSchedule> parse_sigma_schedule(std::string_view name);

// The names parse_sigma_schedule reads, for messages: "simple, karras, exponential, beta".
std::string_view sigma_schedule_choices();

// `model` respaced as `schedule` says (kSimple returns it unchanged). `model` must be a full
// schedule (before an img2img start is cut off, as diffusers respaces in set_timesteps).
FlowSchedule respace(const FlowSchedule& model, SigmaSchedule schedule);

// scipy.stats.beta.ppf(q, a, b): the x with I_x(a, b) = q, for q in [0, 1] and a, b > 0, to
// double precision (bisection on the regularized incomplete beta function).
double beta_ppf(double q, double a, double b);

}  // namespace zflow
