// The ODE solvers a flow model can be sampled with (the "sampler" of ComfyUI and
// stable-diffusion.cpp, A1111's "Sampling method"). Each moves the latent x from sigma to the next
// sigma of a FlowSchedule using the velocity v the model gives (x = (1 - sigma) x0 + sigma noise,
// v = noise - x0, so the clean estimate is x0 = x - sigma v). Their step rules are k-diffusion's
// (0.1.1, the code ComfyUI's samplers come from) on ComfyUI's flow denoiser x0 = x - sigma v:
//   euler     x' = x + (sigma' - sigma) v                          one model call per step
//   heun      x2 = x + (sigma' - sigma) v, x' = x + (sigma' - sigma) (v + v(x2, sigma')) / 2,
//             Euler on the last step (to sigma' = 0)               two calls (one on the last step)
//   dpm++2m   DPM-Solver++(2M) in lambda = -log sigma with the previous step's x0 (first-order on
//             the first and the last step)                        one call per step
//   res_multistep  ComfyUI's deterministic RES multistep (Zhang et al. 2023, arXiv 2308.02157):
//             the exponential integrator in lambda that is exact when x0 is linear in lambda,
//             x' = e^-h x + h (b1 x0 + b2 x0_prev), b1 = phi1(-h) - phi2(-h) / c2,
//             b2 = phi2(-h) / c2, c2 = (lambda_prev - lambda) / h; Euler on the first and the
//             last step. ComfyUI's Z-Image template samples with it.    one call per step
//   euler_a   ComfyUI's Euler ancestral for flow models (eta 1): Euler down to
//             sigma_d = sigma'^2 / sigma, then the signal scaled to 1 - sigma' and fresh noise
//             added to bring the noise back to sigma'                  one call per step
//   lcm       ComfyUI's LCM: the clean estimate, noised afresh to sigma' one call per step
// The last two draw noise every step (FlowNoise); ComfyUI on a CPU draws it from a generator
// seeded seed + 1, which the pipelines do too.
// Euler is also diffusers' FlowMatchEulerDiscreteScheduler step, the one every pipeline defaults
// to.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "sampling/sigma_schedule.h"

namespace zflow {

enum class FlowSampler {
  kEuler,
  kHeun,
  kDpmPP2M,
  kResMultistep,
  kEulerAncestral,
  kLcm,
};

// Every sampler, in the order lists show them.
inline constexpr FlowSampler kFlowSamplers[] = {
    FlowSampler::kEuler,        FlowSampler::kHeun,           FlowSampler::kDpmPP2M,
    FlowSampler::kResMultistep, FlowSampler::kEulerAncestral, FlowSampler::kLcm};

// Whether the sampler adds fresh noise on its steps.
constexpr bool is_stochastic(FlowSampler sampler) {
  return sampler == FlowSampler::kEulerAncestral || sampler == FlowSampler::kLcm;
}

// The name the CLI, the server and the image record use: euler, heun, dpm++2m, res_multistep,
// euler_a, lcm.
std::string_view flow_sampler_name(FlowSampler sampler);

// A1111's display name: Euler, Heun, DPM++ 2M, RES multistep, Euler a, LCM.
std::string_view flow_sampler_display_name(FlowSampler sampler);

// Reads a name case-insensitively, ignoring spaces, '_' and '-': zflow's and stable-diffusion.cpp's
// (dpm++2m), ComfyUI's (dpmpp_2m) and A1111's (DPM++ 2M).
std::optional<FlowSampler> parse_flow_sampler(std::string_view name);

// The names parse_flow_sampler reads, for messages: "euler, heun, dpm++2m, res_multistep, euler_a,
// lcm".
std::string_view flow_sampler_choices();

// What a request picks: the solver and the sigma spacing (defaults: the model's own, Euler on its
// schedule, which is what diffusers runs).
struct SamplingChoice {
  FlowSampler sampler = FlowSampler::kEuler;
  SigmaSchedule schedule = SigmaSchedule::kSimple;

  bool operator==(const SamplingChoice&) const = default;
};

// The A1111 parameters fields: "Sampler: DPM++ 2M" and, unless simple, ", Schedule type: Karras".
std::string a1111_sampling_fields(const SamplingChoice& choice);

}  // namespace zflow
