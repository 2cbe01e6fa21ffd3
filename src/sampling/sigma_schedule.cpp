// Precision follows diffusers: _convert_to_karras / _exponential / _beta read the float32 shifted
// sigmas' first and last values as Python floats and compute in float64 (numpy), and set_timesteps
// rounds the result to float32 before timesteps = sigma * 1000 in float32.
#include "sampling/sigma_schedule.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/error.h"

namespace zflow {
namespace {

struct NamedSchedule {
  std::string_view name;
  SigmaSchedule schedule;
};

constexpr std::array<NamedSchedule, 6> kNames{{
    {"simple", SigmaSchedule::kSimple},
    {"default", SigmaSchedule::kSimple},
    {"automatic", SigmaSchedule::kSimple},
    {"karras", SigmaSchedule::kKarras},
    {"exponential", SigmaSchedule::kExponential},
    {"beta", SigmaSchedule::kBeta},
}};

// The continued fraction of I_x(a, b) (modified Lentz), which converges fast for
// x < (a + 1) / (a + b + 2); the caller uses the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) otherwise.
double incomplete_beta_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300;
  constexpr double kEpsilon = 1e-16;
  const double qab = a + b, qap = a + 1.0, qam = a - 1.0;
  double c = 1.0;
  double d = 1.0 - qab * x / qap;
  if (std::abs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double h = d;
  for (int m = 1; m <= 1000; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1.0 + aa * d;
    if (std::abs(d) < kTiny) d = kTiny;
    c = 1.0 + aa / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < kEpsilon) break;
  }
  return h;
}

// The regularized incomplete beta function I_x(a, b).
double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double front = std::exp(log_front);
  if (x < (a + 1.0) / (a + b + 2.0)) return front * incomplete_beta_fraction(a, b, x) / a;
  return 1.0 - front * incomplete_beta_fraction(b, a, 1.0 - x) / b;
}

}  // namespace

std::string_view sigma_schedule_name(SigmaSchedule schedule) {
  switch (schedule) {
    case SigmaSchedule::kSimple:
      return "simple";
    case SigmaSchedule::kKarras:
      return "karras";
    case SigmaSchedule::kExponential:
      return "exponential";
    case SigmaSchedule::kBeta:
      return "beta";
  }
  return "simple";
}

std::string_view sigma_schedule_label(SigmaSchedule schedule) {
  switch (schedule) {
    case SigmaSchedule::kSimple:
      return "Simple";
    case SigmaSchedule::kKarras:
      return "Karras";
    case SigmaSchedule::kExponential:
      return "Exponential";
    case SigmaSchedule::kBeta:
      return "Beta";
  }
  return "Simple";
}

std::optional<SigmaSchedule> parse_sigma_schedule(std::string_view name) {
  std::string lower(name);
  std::ranges::transform(lower, lower.begin(),
                         [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const NamedSchedule& named : kNames)
    if (named.name == lower) return named.schedule;
  return std::nullopt;
}

std::string_view sigma_schedule_choices() {
  return "simple, karras, exponential, beta";
}

double beta_ppf(double q, double a, double b) {
  ZF_CHECK(q >= 0.0 && q <= 1.0 && a > 0.0 && b > 0.0,
           "[sigma_schedule] beta_ppf({}, {}, {}): q must be in [0, 1] and a, b positive", q, a, b);
  if (q == 0.0) return 0.0;
  if (q == 1.0) return 1.0;
  // I_x is increasing in x; halving [lo, hi] until the midpoint is one of its ends leaves the
  // last double-precision bit to the accuracy of I_x itself (about 1e-15).
  double lo = 0.0, hi = 1.0;
  for (int i = 0; i < 2000; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (regularized_incomplete_beta(a, b, mid) < q ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

FlowSchedule respace(const FlowSchedule& model, SigmaSchedule schedule) {
  if (schedule == SigmaSchedule::kSimple) return model;
  const int n = model.steps();
  ZF_CHECK(n > 0 && model.sigmas.size() == static_cast<size_t>(n) + 1,
           "[sigma_schedule] respace: malformed schedule of {} sigmas for {} steps",
           model.sigmas.size(), n);
  // The ends: the first and the last sigma before the terminal 0, as Python floats.
  const double sigma_max = model.sigmas.front();
  const double sigma_min = model.sigmas[static_cast<size_t>(n - 1)];
  const std::vector<double> ramp = numpy_linspace(0.0, 1.0, n);

  std::vector<double> spaced(static_cast<size_t>(n));
  switch (schedule) {
    case SigmaSchedule::kKarras: {
      const double rho = 7.0;
      const double min_inv_rho = std::pow(sigma_min, 1.0 / rho);
      const double max_inv_rho = std::pow(sigma_max, 1.0 / rho);
      for (size_t i = 0; i < spaced.size(); ++i)
        spaced[i] = std::pow(max_inv_rho + ramp[i] * (min_inv_rho - max_inv_rho), rho);
      break;
    }
    case SigmaSchedule::kExponential: {
      const std::vector<double> logs = numpy_linspace(std::log(sigma_max), std::log(sigma_min), n);
      for (size_t i = 0; i < spaced.size(); ++i) spaced[i] = std::exp(logs[i]);
      break;
    }
    case SigmaSchedule::kBeta: {
      const double alpha = 0.6, beta = 0.6;  // diffusers' defaults, from the paper
      for (size_t i = 0; i < spaced.size(); ++i)
        spaced[i] = sigma_min + beta_ppf(1.0 - ramp[i], alpha, beta) * (sigma_max - sigma_min);
      break;
    }
    case SigmaSchedule::kSimple:
      break;
  }

  FlowSchedule out;
  out.sigmas.reserve(spaced.size() + 1);
  out.timesteps.reserve(spaced.size());
  for (double sigma : spaced) {
    const auto s = static_cast<float>(sigma);
    out.sigmas.push_back(s);
    out.timesteps.push_back(s * 1000.0f);
  }
  out.sigmas.push_back(0.0f);
  return out;
}

}  // namespace zflow
