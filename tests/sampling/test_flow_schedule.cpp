// Flow-matching schedules against diffusers 0.42.1 (fixture made by
// tools/golden/make_schedules.py, which drives the real scheduler and pipeline helpers) and
// against values worked out by hand from the formulas in zimage.md §5 / flux.md §5.
//
// Tolerances. Sigmas lie in [0, 1], where a float32 ulp is at most 6e-8, and zflow repeats
// diffusers' operations in the same order and precision, so they agree to 0-1 ulp (on x86-64
// they agree bit for bit). 1e-6 leaves room for a compiler fusing a*b+c into an FMA or torch's
// vector linspace kernel (both 1 ulp) while any real formula slip (spacing 1/(N-1) instead of
// 1/N, a wrong shift or mu) moves values by 1e-3 or more. Timesteps are sigma * 1000, so the
// same relative precision is 1e-6 * 1000 = 1e-3 absolute. mu is float64 in both: 1e-12.
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "sampling/flow_schedule.h"
#include "test_util.h"

namespace zflow {
namespace {

constexpr double kSigmaTol = 1e-6;
constexpr double kTimestepTol = 1e-3;
constexpr double kMuTol = 1e-12;

const nlohmann::json& golden() {
  static const nlohmann::json doc = [] {
    const auto path = test::fixture("schedules/diffusers_flow_match_schedules.json");
    std::ifstream in(path);
    if (!in) fail("[test] {}: cannot open the schedule fixture", path.string());
    auto parsed = nlohmann::json::parse(in);
    const auto version = parsed.at("_meta").at("zflow_fixture_format").get<std::string>();
    if (version != "1") fail("[test] {}: fixture format {}, expected 1", path.string(), version);
    return parsed;
  }();
  return doc;
}

double max_abs_error(const std::vector<float>& got, const std::vector<double>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - want[i]));
  return worst;
}

void expect_schedule(const FlowSchedule& got, const nlohmann::json& want, const std::string& what) {
  const auto sigmas = want.at("sigmas").get<std::vector<double>>();
  const auto timesteps = want.at("timesteps").get<std::vector<double>>();
  ASSERT_EQ(got.sigmas.size(), sigmas.size()) << what;
  ASSERT_EQ(got.timesteps.size(), timesteps.size()) << what;
  EXPECT_LE(max_abs_error(got.sigmas, sigmas), kSigmaTol) << what << " sigmas";
  EXPECT_LE(max_abs_error(got.timesteps, timesteps), kTimestepTol) << what << " timesteps";
  EXPECT_EQ(got.sigmas.back(), 0.0f) << what;
}

std::string describe(const nlohmann::json& c) {
  std::string text =
      c.at("name").get<std::string>() + " steps=" + std::to_string(c.at("steps").get<int>());
  if (c.contains("image_seq_len"))
    text += " seq=" + std::to_string(c.at("image_seq_len").get<int64_t>());
  if (c.contains("strength")) text += " strength=" + std::to_string(c.at("strength").get<double>());
  return text;
}

TEST(FlowSchedule, StaticShiftMatchesDiffusers) {
  const auto& cases = golden().at("static_shift");
  ASSERT_EQ(cases.size(), 4u);
  for (const auto& c : cases) {
    const auto name = c.at("name").get<std::string>();
    const int steps = c.at("steps").get<int>();
    const FlowSchedule got = name == "flux1_schnell"
                                 ? flux1_schnell_schedule(steps)
                                 : zimage_schedule(steps, c.at("shift").get<double>());
    expect_schedule(got, c, describe(c));
  }
}

TEST(FlowSchedule, DynamicShiftAndMuMatchDiffusers) {
  const auto& cases = golden().at("dynamic_shift");
  ASSERT_EQ(cases.size(), 12u);
  for (const auto& c : cases) {
    const auto name = c.at("name").get<std::string>();
    const int steps = c.at("steps").get<int>();
    const auto seq = c.at("image_seq_len").get<int64_t>();
    const double mu = name == "flux2" ? flux2_empirical_mu(seq, steps) : flux1_mu(seq);
    EXPECT_NEAR(mu, c.at("mu").get<double>(), kMuTol) << describe(c);
    const FlowSchedule got =
        name == "flux2" ? flux2_schedule(steps, seq) : flux1_dev_schedule(steps, seq);
    expect_schedule(got, c, describe(c));
  }
}

TEST(FlowSchedule, Img2ImgStartMatchesDiffusers) {
  const auto& cases = golden().at("img2img");
  ASSERT_EQ(cases.size(), 22u);
  for (const auto& c : cases) {
    const int steps = c.at("steps").get<int>();
    const int start = img2img_start(steps, c.at("strength").get<double>());
    EXPECT_EQ(start, c.at("start").get<int>()) << describe(c);
    const FlowSchedule full = c.at("name") == "zimage_turbo" ? zimage_schedule(steps, 3.0)
                                                             : flux1_dev_schedule(steps, 4096);
    expect_schedule(full.starting_at(start), c, describe(c));
  }
}

// zimage.md §5.2: Turbo, 8 steps, shift 3. Unshifted x = k/8 maps to 3x / (1 + 2x).
TEST(FlowSchedule, ZImageTurboFromTheFormula) {
  const std::vector<double> sigmas = {1.0, 21.0 / 22, 0.9, 5.0 / 6, 0.75, 9.0 / 14, 0.5, 0.3, 0.0};
  const FlowSchedule s = zimage_schedule(8, 3.0);
  ASSERT_EQ(s.steps(), 8);
  EXPECT_LE(max_abs_error(s.sigmas, sigmas), kSigmaTol);
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(s.timesteps[i], 1000.0 * sigmas[i], kTimestepTol) << i;
    EXPECT_NEAR(zimage_model_time(s.timesteps[i]), 1.0 - sigmas[i], kSigmaTol) << i;
    EXPECT_NEAR(flux_model_time(s.timesteps[i]), sigmas[i], kSigmaTol) << i;
  }
}

// zimage.md §5.2: Base, 50 steps, shift 6, quoted to 5 decimals (so 5e-6).
TEST(FlowSchedule, ZImageBaseMatchesTheFacts) {
  const FlowSchedule s = zimage_schedule(50, 6.0);
  ASSERT_EQ(s.sigmas.size(), 51u);
  EXPECT_NEAR(s.sigmas[1], 0.99661, 5e-6);
  EXPECT_NEAR(s.sigmas[2], 0.99310, 5e-6);
  EXPECT_NEAR(s.sigmas[47], 0.27692, 5e-6);
  EXPECT_NEAR(s.sigmas[48], 0.2, 5e-6);
  EXPECT_NEAR(s.sigmas[49], 0.10909, 5e-6);
}

// flux.md §5.2: schnell has no shift, so the sigmas are the exact grid k/4; dev at 1024² (mu
// 1.15) quoted to 4 decimals (so 5e-5).
TEST(FlowSchedule, Flux1FromTheFacts) {
  const FlowSchedule schnell = flux1_schnell_schedule(4);
  EXPECT_EQ(schnell.sigmas, (std::vector<float>{1.0f, 0.75f, 0.5f, 0.25f, 0.0f}));
  const FlowSchedule dev = flux1_dev_schedule(4, 4096);
  const std::vector<double> quoted = {1.0, 0.9045, 0.7595, 0.5128, 0.0};
  EXPECT_LE(max_abs_error(dev.sigmas, quoted), 5e-5);
}

// flux.md §5.2-5.3 quotes mu to 3 decimals (so 5e-4).
TEST(FlowSchedule, MuFromTheFacts) {
  EXPECT_NEAR(flux1_mu(1024), 0.630, 5e-4);
  EXPECT_NEAR(flux1_mu(4096), 1.15, 1e-12);  // the line's end point
  EXPECT_NEAR(flux1_mu(256), 0.5, 1e-12);    // and its start
  EXPECT_NEAR(flux1_mu(9216), 2.017, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(4096, 50), 2.023, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(4096, 28), 2.151, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(4096, 4), 2.291, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(1024, 50), 1.702, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(1024, 28), 1.859, 5e-4);
  EXPECT_NEAR(flux2_empirical_mu(1024, 4), 2.031, 5e-4);
  // Above 4300 tokens FLUX.2 uses the FLUX.1 line (its slope rounded to 0.00016927, so the two
  // differ by 8.3e-10 per token: 1.4e-5 at 16384) and the step count drops out.
  EXPECT_EQ(flux2_empirical_mu(16384, 4), flux2_empirical_mu(16384, 50));
  EXPECT_NEAR(flux2_empirical_mu(16384, 28), flux1_mu(16384), 2e-5);
}

// zimage.md §5.4: Turbo, 8 steps, strength 0.6 starts at index 3 (sigma 0.8333, 5 steps).
TEST(FlowSchedule, Img2ImgFromTheFacts) {
  EXPECT_EQ(img2img_start(8, 0.6), 3);
  const FlowSchedule tail = zimage_schedule(8, 3.0).starting_at(3);
  EXPECT_EQ(tail.steps(), 5);
  EXPECT_NEAR(tail.sigmas.front(), 5.0 / 6, kSigmaTol);
  EXPECT_EQ(img2img_start(8, 1.0), 0);
  // The Z-Image img2img defaults: 50 * 0.6 must be 30 (float64), not 30.0000012 (float32).
  EXPECT_EQ(img2img_start(50, 0.6), 20);
}

void expect_error(const std::function<void()>& call, const std::string& fragment) {
  try {
    call();
    ADD_FAILURE() << "expected an Error mentioning '" << fragment << "'";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.rfind("[flow_schedule] ", 0), 0u) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(FlowSchedule, BadArgumentsGiveClearErrors) {
  expect_error([] { zimage_schedule(0, 3.0); }, "steps must be at least 1, got 0");
  expect_error([] { flux1_dev_schedule(-2, 4096); }, "steps must be at least 1, got -2");
  expect_error([] { flux2_schedule(0, 4096); }, "steps must be at least 1");
  expect_error([] { linear_sigmas(0, SigmaSpacing::kNumpyF64); }, "steps must be at least 1");
  expect_error([] { static_shift(8, 0.0, SigmaSpacing::kTorchF32); }, "shift must be positive");
  expect_error(
      [] { dynamic_shift(8, std::numeric_limits<double>::quiet_NaN(), SigmaSpacing::kNumpyF64); },
      "mu must be finite");
  expect_error([] { img2img_start(0, 0.5); }, "steps must be at least 1");
  expect_error([] { img2img_start(8, -0.1); }, "strength must be in [0, 1], got -0.1");
  expect_error([] { img2img_start(8, 1.5); }, "strength must be in [0, 1], got 1.5");
  expect_error([] { img2img_start(8, std::numeric_limits<double>::quiet_NaN()); },
               "strength must be in [0, 1]");
  expect_error([] { img2img_start(8, 0.0); }, "leaves 0 steps to run");
  // 8 - 8e-17 rounds to 8 in float64, so diffusers also gets start 8 and no step.
  expect_error([] { img2img_start(8, 1e-17); }, "leaves 0 steps to run");
  expect_error([] { zimage_schedule(8, 3.0).starting_at(8); }, "start 8 is outside [0, 8)");
}

}  // namespace
}  // namespace zflow
