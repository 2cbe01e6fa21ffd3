// Precision: diffusers mixes float64 and float32 in a fixed order, and every operation below
// repeats that order with the same types, so on IEEE hardware the results are the same float32
// values bit for bit (checked against the diffusers fixture). Where diffusers computes:
//   - linspace: torch float32 (Z-Image) or numpy float64 rounded to float32 (FLUX);
//   - shift: numpy on a float32 array with Python-float scalars. NumPy 2 (NEP 50) casts the
//     scalars to float32, so each + - * / rounds to float32; s - 1 and e^mu are formed in
//     float64 first and then rounded, as Python evaluates them before numpy sees them;
//   - timesteps: torch float32 sigma * 1000;
//   - mu and the img2img start: Python floats, i.e. float64.
// The code keeps one rounding per source-level operation; a compiler that fused a*b+c into an
// FMA (fp-contract on a target with FMA) could move a value by 1 ulp, which the tests tolerate.
#include "sampling/flow_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace zflow {
namespace {

void check_steps(const char* op, int steps) {
  ZF_CHECK(steps > 0, "[flow_schedule] {}: steps must be at least 1, got {}", op, steps);
}

// torch.linspace(1.0, 1/N, N) on CPU, scalar kernel (RangeFactoriesKernel.cpp): float32 step,
// the first half counted up from the start and the second half down from the end, so both ends
// are exact. torch's vectorized (AVX2) kernel gives a few values one ulp away from these (seen
// with torch 2.15 for N = 9, 13, 28, 50, ...); we follow the scalar kernel, which is the same on
// every machine (the fixture pins it with ATEN_CPU_CAPABILITY=default).
std::vector<float> torch_linspace_f32(int steps) {
  const float start = 1.0f;
  const auto end = static_cast<float>(1.0 / steps);  // the Python float 1/N, rounded by torch
  if (steps == 1) return {start};
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  std::vector<float> out(steps);
  for (int i = 0; i < steps; ++i) {
    out[i] = i < halfway ? start + step * static_cast<float>(i)
                         : end - step * static_cast<float>(steps - i - 1);
  }
  return out;
}

// np.linspace(1.0, 1/N, N) in float64, then .astype(np.float32) in set_timesteps: round to
// nearest.
std::vector<float> numpy_linspace_f64_to_f32(int steps) {
  const std::vector<double> grid = numpy_linspace(1.0, 1.0 / steps, steps);
  return {grid.begin(), grid.end()};
}

// Appends the terminal sigma 0 and derives the timesteps, as set_timesteps steps 5 and 6 do.
FlowSchedule finish(std::vector<float> shifted) {
  FlowSchedule schedule;
  schedule.timesteps.reserve(shifted.size());
  for (float sigma : shifted) schedule.timesteps.push_back(sigma * 1000.0f);
  schedule.sigmas = std::move(shifted);
  schedule.sigmas.push_back(0.0f);
  return schedule;
}

}  // namespace

std::vector<double> numpy_linspace(double start, double stop, int n) {
  ZF_CHECK(n >= 1, "[flow_schedule] numpy_linspace: n must be at least 1, got {}", n);
  std::vector<double> out(static_cast<size_t>(n), start);
  if (n == 1) return out;
  const double step = (stop - start) / (n - 1);
  for (int i = 0; i < n - 1; ++i)
    out[static_cast<size_t>(i)] = static_cast<double>(i) * step + start;
  out.back() = stop;
  return out;
}

FlowSchedule FlowSchedule::starting_at(int start) const {
  ZF_CHECK(start >= 0 && start < steps(),
           "[flow_schedule] starting_at: start {} is outside [0, {})", start, steps());
  FlowSchedule tail;
  tail.sigmas.assign(sigmas.begin() + start, sigmas.end());
  tail.timesteps.assign(timesteps.begin() + start, timesteps.end());
  return tail;
}

std::vector<float> linear_sigmas(int steps, SigmaSpacing spacing) {
  check_steps("linear_sigmas", steps);
  return spacing == SigmaSpacing::kTorchF32 ? torch_linspace_f32(steps)
                                            : numpy_linspace_f64_to_f32(steps);
}

FlowSchedule static_shift(int steps, double shift, SigmaSpacing spacing) {
  check_steps("static_shift", steps);
  ZF_CHECK(shift > 0.0, "[flow_schedule] static_shift: shift must be positive, got {}", shift);
  // shift * sigmas / (1 + (shift - 1) * sigmas), numpy float32 with Python-float scalars.
  const auto s = static_cast<float>(shift);
  const auto s_minus_1 = static_cast<float>(shift - 1.0);
  std::vector<float> sigmas = linear_sigmas(steps, spacing);
  for (float& sigma : sigmas) {
    const float numerator = s * sigma;
    const float denominator = 1.0f + s_minus_1 * sigma;
    sigma = numerator / denominator;
  }
  return finish(std::move(sigmas));
}

FlowSchedule dynamic_shift(int steps, double mu, SigmaSpacing spacing) {
  check_steps("dynamic_shift", steps);
  ZF_CHECK(std::isfinite(mu), "[flow_schedule] dynamic_shift: mu must be finite, got {}", mu);
  // _time_shift_exponential(mu, 1.0, t) = exp(mu) / (exp(mu) + (1 / t - 1) ** 1.0): math.exp in
  // float64, then every operation in float32 (the power with exponent 1.0 is the identity).
  const auto e_mu = static_cast<float>(std::exp(mu));
  std::vector<float> sigmas = linear_sigmas(steps, spacing);
  for (float& sigma : sigmas) {
    const float odds = 1.0f / sigma - 1.0f;
    sigma = e_mu / (e_mu + odds);
  }
  return finish(std::move(sigmas));
}

double flux1_mu(int64_t image_seq_len, int64_t base_seq, int64_t max_seq, double base_shift,
                double max_shift) {
  ZF_CHECK(max_seq != base_seq, "[flow_schedule] flux1_mu: base_seq and max_seq are both {}",
           base_seq);
  const double m = (max_shift - base_shift) / static_cast<double>(max_seq - base_seq);
  const double b = base_shift - m * static_cast<double>(base_seq);
  return static_cast<double>(image_seq_len) * m + b;
}

double flux2_empirical_mu(int64_t image_seq_len, int steps) {
  check_steps("flux2_empirical_mu", steps);
  // Fitted constants from BFL flux2 sampling.py, as diffusers copies them.
  const double a1 = 8.73809524e-05, b1 = 1.89833333;  // the 10-step line
  const double a2 = 0.00016927, b2 = 0.45666666;      // the 200-step line
  const auto seq = static_cast<double>(image_seq_len);
  if (image_seq_len > 4300) return a2 * seq + b2;
  const double m_200 = a2 * seq + b2;
  const double m_10 = a1 * seq + b1;
  const double a = (m_200 - m_10) / 190.0;
  const double b = m_200 - 200.0 * a;
  return a * static_cast<double>(steps) + b;
}

int img2img_start(int steps, double strength) {
  check_steps("img2img_start", steps);
  ZF_CHECK(strength >= 0.0 && strength <= 1.0,
           "[flow_schedule] img2img_start: strength must be in [0, 1], got {}", strength);
  // Float64 as in Python: 50 * 0.6 is 30 exactly here but 30.0000012 with a float32 strength,
  // which truncates to start 19 instead of diffusers' 20.
  const double n = steps;
  const double init = std::min(n * strength, n);
  const int start = static_cast<int>(std::max(n - init, 0.0));
  ZF_CHECK(start < steps,
           "[flow_schedule] img2img_start: strength {} with {} steps leaves {} steps to run; raise "
           "strength or steps",
           strength, steps, steps - start);
  return start;
}

float zimage_model_time(float timestep) {
  return (1000.0f - timestep) / 1000.0f;
}

float flux_model_time(float timestep) {
  return timestep / 1000.0f;
}

FlowSchedule zimage_schedule(int steps, double shift) {
  return static_shift(steps, shift, SigmaSpacing::kTorchF32);
}

FlowSchedule flux1_dev_schedule(int steps, int64_t image_seq_len) {
  return dynamic_shift(steps, flux1_mu(image_seq_len), SigmaSpacing::kNumpyF64);
}

FlowSchedule flux1_schnell_schedule(int steps) {
  return static_shift(steps, 1.0, SigmaSpacing::kNumpyF64);
}

FlowSchedule flux2_schedule(int steps, int64_t image_seq_len) {
  return dynamic_shift(steps, flux2_empirical_mu(image_seq_len, steps), SigmaSpacing::kNumpyF64);
}

}  // namespace zflow
