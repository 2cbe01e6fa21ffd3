// Sigma schedules and samplers against their references (fixture: tools/golden/make_samplers.py):
// diffusers 0.42.1's FlowMatchEulerDiscreteScheduler with Karras / exponential / beta sigmas as
// the pipelines drive it, scipy's beta.ppf, and k-diffusion 0.1.1's Euler / Heun / DPM++ 2M on a
// stand-in velocity v(x, sigma) = tanh(x) (1 + sigma) - c sigma^2.
//
// Tolerances. Respaced sigmas are float64 math rounded to float32 in both: 1e-6 (as the shifted
// schedules, test_flow_schedule.cpp) allows a 1-ulp tie; a wrong rho, end or ramp moves them by
// 1e-3 or more. beta.ppf: 1e-10 relative (both are double precision; scipy's is Boost's
// ibeta_inv, ours bisection). Trajectories: zflow steps with v where k-diffusion divides
// (x - x0) / sigma back out, a few float32 roundings per step over up to 28 steps on values of
// order 1 (measured: at most 2.4e-7): 2e-6 absolute, while the samplers end 1e-2 and more apart
// (checked below).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/rng.h"
#include "pipeline/flow_denoise.h"
#include "pipeline/scheduler_config.h"
#include "sampling/flow_sampler.h"
#include "sampling/sigma_schedule.h"
#include "test_util.h"

namespace zflow {
namespace {

constexpr double kSigmaTol = 1e-6;
constexpr double kBetaPpfRelTol = 1e-10;
constexpr double kTrajectoryTol = 2e-6;

const nlohmann::json& golden() {
  static const nlohmann::json doc = [] {
    const auto path = test::fixture("samplers/flow_samplers.json");
    std::ifstream in(path);
    if (!in) fail("[test] {}: cannot open the sampler fixture", path.string());
    return nlohmann::json::parse(in);
  }();
  return doc;
}

SigmaSchedule schedule_named(const std::string& name) {
  const auto parsed = parse_sigma_schedule(name);
  if (!parsed) fail("[test] unknown schedule {}", name);
  return *parsed;
}

FlowSchedule model_schedule(const nlohmann::json& c) {
  const auto family = c.at("family").get<std::string>();
  const int steps = c.at("steps").get<int>();
  if (family == "zimage") return zimage_schedule(steps, c.at("shift").get<double>());
  const auto seq = c.at("image_seq_len").get<int64_t>();
  if (family == "flux1_dev") return flux1_dev_schedule(steps, seq);
  if (family == "flux2") return flux2_schedule(steps, seq);
  if (family == "zimage_dynamic") {  // a Z-Image scheduler config that shifts dynamically
    pipeline::SchedulerConfig dynamic;
    dynamic.use_dynamic_shifting = true;
    return pipeline::zimage_config_schedule(dynamic, steps, std::nullopt, seq);
  }
  fail("[test] unknown family {}", family);
}

std::string describe(const nlohmann::json& c) {
  return c.at("family").get<std::string>() + " " + std::to_string(c.at("steps").get<int>()) +
         " steps " + c.at("respacing").get<std::string>();
}

TEST(SigmaSchedule, RespacingMatchesDiffusers) {
  const auto& cases = golden().at("schedules");
  ASSERT_EQ(cases.size(), 30u);
  for (const auto& c : cases) {
    const FlowSchedule got =
        respace(model_schedule(c), schedule_named(c.at("respacing").get<std::string>()));
    const auto sigmas = c.at("sigmas").get<std::vector<double>>();
    const auto timesteps = c.at("timesteps").get<std::vector<double>>();
    ASSERT_EQ(got.sigmas.size(), sigmas.size()) << describe(c);
    ASSERT_EQ(got.timesteps.size(), timesteps.size()) << describe(c);
    for (size_t i = 0; i < sigmas.size(); ++i)
      EXPECT_NEAR(got.sigmas[i], sigmas[i], kSigmaTol) << describe(c) << " sigma " << i;
    for (size_t i = 0; i < timesteps.size(); ++i)
      EXPECT_NEAR(got.timesteps[i], timesteps[i], 1000 * kSigmaTol) << describe(c) << " t " << i;
  }
}

TEST(SigmaSchedule, SimpleKeepsTheModelsSchedule) {
  const FlowSchedule model = zimage_schedule(8, 3.0);
  const FlowSchedule same = respace(model, SigmaSchedule::kSimple);
  EXPECT_EQ(same.sigmas, model.sigmas);
  EXPECT_EQ(same.timesteps, model.timesteps);
}

TEST(SigmaSchedule, BetaPpfMatchesScipy) {
  for (const auto& c : golden().at("beta_ppf")) {
    const double want = c.at("x").get<double>();
    const double got =
        beta_ppf(c.at("q").get<double>(), c.at("a").get<double>(), c.at("b").get<double>());
    EXPECT_LE(std::abs(got - want), kBetaPpfRelTol * want) << c.dump();
  }
}

TEST(SigmaSchedule, NamesRoundTripAndUnknownOnesAreRefused) {
  for (SigmaSchedule s : kSigmaSchedules)
    EXPECT_EQ(parse_sigma_schedule(sigma_schedule_name(s)), s);
  EXPECT_EQ(parse_sigma_schedule("Karras"), SigmaSchedule::kKarras);
  EXPECT_EQ(parse_sigma_schedule("Automatic"), SigmaSchedule::kSimple);
  EXPECT_EQ(parse_sigma_schedule("sgm_uniform"), std::nullopt);
  EXPECT_EQ(parse_sigma_schedule(""), std::nullopt);
}

TEST(FlowSampler, NamesOfEveryPeerAreRead) {
  EXPECT_EQ(parse_flow_sampler("euler"), FlowSampler::kEuler);
  EXPECT_EQ(parse_flow_sampler("Heun"), FlowSampler::kHeun);
  EXPECT_EQ(parse_flow_sampler("dpm++2m"), FlowSampler::kDpmPP2M);
  EXPECT_EQ(parse_flow_sampler("dpmpp_2m"), FlowSampler::kDpmPP2M);
  EXPECT_EQ(parse_flow_sampler("DPM++ 2M"), FlowSampler::kDpmPP2M);
  EXPECT_EQ(parse_flow_sampler("res_multistep"), FlowSampler::kResMultistep);
  EXPECT_EQ(parse_flow_sampler("Euler a"), FlowSampler::kEulerAncestral);          // A1111's
  EXPECT_EQ(parse_flow_sampler("euler_ancestral"), FlowSampler::kEulerAncestral);  // ComfyUI's
  EXPECT_EQ(parse_flow_sampler("LCM"), FlowSampler::kLcm);
  EXPECT_EQ(parse_flow_sampler("ddim"), std::nullopt);
  for (FlowSampler s : kFlowSamplers) {
    EXPECT_EQ(parse_flow_sampler(flow_sampler_name(s)), s);
    EXPECT_EQ(parse_flow_sampler(flow_sampler_display_name(s)), s);
  }
}

Tensor tensor_of(const std::vector<float>& values, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

// The stand-in's velocity in torch's float32 operation order.
Tensor stand_in_velocity(const Tensor& x, const Tensor& c, float sigma) {
  Tensor v = Tensor::empty(x.shape(), DType::F32);
  const float* xs = x.data<float>();
  const float* cs = c.data<float>();
  float* out = v.data<float>();
  const float grow = 1.0f + sigma;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const float a = std::tanh(xs[i]) * grow;
    const float b = cs[i] * sigma * sigma;
    out[i] = a - b;
  }
  return v;
}

TEST(FlowSampler, TrajectoriesMatchKDiffusion) {
  const auto& doc = golden().at("trajectories");
  const auto dims = doc.at("shape").get<std::vector<int64_t>>();
  const Shape shape(dims.begin(), dims.end());
  const Tensor noise = tensor_of(doc.at("noise").get<std::vector<float>>(), shape);
  const Tensor c = tensor_of(doc.at("c").get<std::vector<float>>(), shape);
  const auto& cases = doc.at("cases");
  ASSERT_EQ(cases.size(), 15u);
  int calls = 0;
  for (const auto& k : cases) {
    FlowSchedule schedule;
    schedule.sigmas = k.at("sigmas").get<std::vector<float>>();
    for (size_t i = 0; i + 1 < schedule.sigmas.size(); ++i)
      schedule.timesteps.push_back(schedule.sigmas[i] * 1000.0f);
    const float s0 = schedule.sigmas[0];
    Tensor start = Tensor::empty(shape, DType::F32);
    for (int64_t i = 0; i < start.numel(); ++i) {
      const float a = s0 * noise.data<float>()[i];
      const float b = (1.0f - s0) * c.data<float>()[i];
      start.data<float>()[i] = a + b;
    }
    const auto sampler = parse_flow_sampler(k.at("sampler").get<std::string>());
    ASSERT_TRUE(sampler);
    calls = 0;
    const pipeline::FlowVelocity velocity = [&](const Tensor& x, int step) {
      ++calls;
      return stand_in_velocity(x, c, schedule.sigmas.at(static_cast<size_t>(step)));
    };
    const Tensor got = pipeline::flow_denoise(velocity, start, schedule, nullptr, {}, *sampler);
    const auto want = k.at("output").get<std::vector<float>>();
    const std::string what = k.at("sampler").get<std::string>() + " on " + describe(k) +
                             (k.contains("start") ? " from step 3" : "");
    ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
    float worst = 0.0f;
    for (size_t i = 0; i < want.size(); ++i)
      worst = std::max(worst, std::abs(got.data<float>()[i] - want[i]));
    EXPECT_LE(worst, kTrajectoryTol) << what;
    const int steps = schedule.steps();
    EXPECT_EQ(calls, *sampler == FlowSampler::kHeun ? 2 * steps - 1 : steps) << what;
  }
}

// RES multistep from first principles. In lambda = -log sigma the flow ODE reads
// dx/dlambda = D - x (D the clean estimate x0 = x - sigma v), so over a step of length h
//   x' = e^-h x + integral_0^h e^-(h-s) D(lambda + s) ds,
// which for D = A + B lambda is e^-h x + (1 - e^-h) D(lambda) + B (h - 1 + e^-h). RES's second
// order multistep interpolates D linearly through the last two steps and integrates exactly, so
// with such a D every step but the Euler ones (the first, and the last to sigma 0) must land on
// that value; DPM++ 2M only approximates the integral, and misses it by more than the bound.
// Tolerance 2e-6: float32 coefficients and logs of sigmas near 1 on values of order 1 (measured
// 1.2e-7; DPM++ 2M misses by 7e-3).
TEST(FlowSampler, ResMultistepIsExactWhereX0IsLinearInLogSigma) {
  const Shape shape{1, 2, 3, 3};
  Tensor a = Tensor::empty(shape, DType::F32), b = Tensor::empty(shape, DType::F32),
         start = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < a.numel(); ++i) {
    a.data<float>()[i] = 0.3f * static_cast<float>(i % 5) - 0.6f;
    b.data<float>()[i] = static_cast<float>(i % 3) - 0.8f;
    start.data<float>()[i] = static_cast<float>((i * 7) % 11) / 5.0f - 1.0f;
  }
  const FlowSchedule schedule = zimage_schedule(5, 3.0);
  const auto clean = [&](float sigma, int64_t i) {
    return a.data<float>()[i] - b.data<float>()[i] * std::log(sigma);  // A + B lambda
  };
  const auto worst_miss = [&](FlowSampler sampler) {
    std::vector<Tensor> seen;  // x at every call: the trajectory
    const pipeline::FlowVelocity velocity = [&](const Tensor& x, int step) {
      seen.push_back(x.clone());
      const float sigma = schedule.sigmas.at(static_cast<size_t>(step));
      Tensor v = Tensor::empty(x.shape(), DType::F32);
      for (int64_t i = 0; i < x.numel(); ++i)
        v.data<float>()[i] = (x.data<float>()[i] - clean(sigma, i)) / sigma;
      return v;
    };
    const Tensor end = pipeline::flow_denoise(velocity, start, schedule, nullptr, {}, sampler);
    seen.push_back(end);
    double worst = 0.0;
    for (int step = 1; step + 1 < schedule.steps(); ++step) {  // the multistep steps
      const double s = schedule.sigmas[static_cast<size_t>(step)];
      const double s_next = schedule.sigmas[static_cast<size_t>(step) + 1];
      const double h = std::log(s / s_next), decay = std::exp(-h);
      for (int64_t i = 0; i < start.numel(); ++i) {
        const double exact = decay * seen[static_cast<size_t>(step)].data<float>()[i] +
                             (1.0 - decay) * clean(static_cast<float>(s), i) +
                             b.data<float>()[i] * (h - 1.0 + decay);
        worst =
            std::max(worst, std::abs(seen[static_cast<size_t>(step) + 1].data<float>()[i] - exact));
      }
    }
    return worst;
  };
  const double res = worst_miss(FlowSampler::kResMultistep);
  const double dpm = worst_miss(FlowSampler::kDpmPP2M);
  std::printf("  off the exact step: res_multistep %.2g, dpm++2m %.2g\n", res, dpm);
  EXPECT_LE(res, 2e-6);
  EXPECT_GT(dpm, 500 * 2e-6);
}

// The stochastic samplers from first principles. With a clean estimate that does not move
// (D fixed: the model knows x0 exactly), a flow latent at sigma is x = (1 - sigma) D + sigma z
// with z standard normal, and a correct sampler keeps every step on that law. What changes is how
// much of z each step keeps: Euler keeps all of it (correlation 1), LCM none (fresh noise), and
// Euler ancestral c = (1 - sigma') sigma_d / ((1 - sigma_d) sigma') with sigma_d = sigma'^2 /
// sigma, the rest fresh. Over 200,000 values the mean, variance and correlation with the
// starting noise are held to 5 standard errors (mean 0.011, variance 0.016, correlation 0.011).
TEST(FlowSampler, StochasticSamplersKeepTheFlowMarginals) {
  const Shape shape{2, 4, 250, 100};
  const int64_t n = 2 * 4 * 250 * 100;
  Tensor d = Tensor::empty(shape, DType::F32);
  for (int64_t i = 0; i < n; ++i) d.data<float>()[i] = std::sin(0.37f * static_cast<float>(i));
  const Tensor start = Generator(11).randn(shape);
  const FlowSchedule schedule = zimage_schedule(6, 3.0);
  const double se = 5.0 / std::sqrt(static_cast<double>(n));
  for (const FlowSampler sampler :
       {FlowSampler::kEuler, FlowSampler::kEulerAncestral, FlowSampler::kLcm}) {
    std::vector<Tensor> seen;
    const pipeline::FlowVelocity velocity = [&](const Tensor& x, int step) {
      seen.push_back(x.clone());
      const float sigma = schedule.sigmas.at(static_cast<size_t>(step));
      Tensor v = Tensor::empty(x.shape(), DType::F32);
      for (int64_t i = 0; i < n; ++i)
        v.data<float>()[i] = (x.data<float>()[i] - d.data<float>()[i]) / sigma;
      return v;
    };
    pipeline::flow_denoise(velocity, start, schedule, nullptr, {}, sampler,
                           pipeline::sampler_noise(5, NormalMath::Avx2Cephes, shape));
    double expected_corr = 1.0;
    for (size_t k = 0; k < seen.size(); ++k) {
      const double sigma = schedule.sigmas[k];
      double sum = 0, sum_sq = 0, cross = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double z = (seen[k].data<float>()[i] - (1.0 - sigma) * d.data<float>()[i]) / sigma;
        sum += z;
        sum_sq += z * z;
        cross += z * start.data<float>()[i];
      }
      const double mean = sum / n, var = sum_sq / n - mean * mean, corr = cross / n;
      const std::string what =
          std::string(flow_sampler_name(sampler)) + " at step " + std::to_string(k);
      EXPECT_NEAR(mean, 0.0, se) << what;
      EXPECT_NEAR(var, 1.0, se * std::sqrt(2.0)) << what;
      EXPECT_NEAR(corr, expected_corr, se) << what;
      const double next = schedule.sigmas[k + 1];
      const double down = next * next / sigma;
      expected_corr *= sampler == FlowSampler::kEuler ? 1.0
                       : sampler == FlowSampler::kLcm ? 0.0
                                                      : (1.0 - next) * down / ((1.0 - down) * next);
    }
  }
}

// The bound above can fail: on the fixture's schedules the three samplers end far outside it
// from each other.
TEST(FlowSampler, TheSamplersDifferByFarMoreThanTheTolerance) {
  const auto& cases = golden().at("trajectories").at("cases");
  for (size_t i = 0; i + 2 < cases.size(); i += 3) {
    const auto euler = cases[i].at("output").get<std::vector<float>>();
    const auto heun = cases[i + 1].at("output").get<std::vector<float>>();
    const auto dpm = cases[i + 2].at("output").get<std::vector<float>>();
    float euler_heun = 0.0f, heun_dpm = 0.0f;
    for (size_t j = 0; j < euler.size(); ++j) {
      euler_heun = std::max(euler_heun, std::abs(euler[j] - heun[j]));
      heun_dpm = std::max(heun_dpm, std::abs(heun[j] - dpm[j]));
    }
    EXPECT_GT(euler_heun, 500 * kTrajectoryTol) << describe(cases[i]);
    EXPECT_GT(heun_dpm, 50 * kTrajectoryTol) << describe(cases[i]);
  }
}

}  // namespace
}  // namespace zflow
