// A model folder's scheduler config: what read_scheduler_config takes from a scheduler_config.json,
// the errors for bad values (naming the file and the field), and that flux1_schedule builds the
// release schedules (checked against diffusers in test_flow_schedule) from the release configs.
// The schedules from non-release configs are checked end to end against diffusers in
// test_flux_pipeline (SchedulerConfig*).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>

#include "pipeline/scheduler_config.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

class SchedulerConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("zflow_flux_scheduler_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& json) const {
    const fs::path path = dir_ / "scheduler_config.json";
    std::ofstream(path) << json;
    return path;
  }
  // The error for a config; it must name the file.
  std::string error_for(const std::string& json) const {
    const fs::path path = write(json);
    const std::string e = test::error_of([&] { read_scheduler_config(path, "flux"); });
    EXPECT_NE(e.find(path.string()), std::string::npos) << e;
    return e;
  }

  fs::path dir_;
};

TEST_F(SchedulerConfigTest, ReadsTheFieldsAndDefaultsTheRestAsTheSchedulerClass) {
  SchedulerConfig c = read_scheduler_config(write(R"({
    "_class_name": "FlowMatchEulerDiscreteScheduler", "num_train_timesteps": 1000,
    "use_dynamic_shifting": true, "shift": 2.5, "base_shift": 0.25, "max_shift": 2,
    "base_image_seq_len": 64, "max_image_seq_len": 2048.0, "shift_terminal": null,
    "use_karras_sigmas": false, "time_shift_type": "exponential", "stochastic_sampling": false})"),
                                            "flux");
  EXPECT_TRUE(c.use_dynamic_shifting);
  EXPECT_EQ(c.shift, 2.5);
  EXPECT_EQ(c.base_shift, 0.25);
  EXPECT_EQ(c.max_shift, 2.0);
  EXPECT_EQ(c.base_image_seq_len, 64);
  EXPECT_EQ(c.max_image_seq_len, 2048);
  // FlowMatchEulerDiscreteScheduler's own defaults for what the file leaves out.
  c = read_scheduler_config(write("{}"), "flux");
  EXPECT_EQ(c.respacing, SigmaSchedule::kSimple);
  EXPECT_FALSE(c.use_dynamic_shifting);
  EXPECT_EQ(c.shift, 1.0);
  EXPECT_EQ(c.base_shift, 0.5);
  EXPECT_EQ(c.max_shift, 1.15);
  EXPECT_EQ(c.base_image_seq_len, 256);
  EXPECT_EQ(c.max_image_seq_len, 4096);
}

TEST_F(SchedulerConfigTest, BadValuesNameTheField) {
  auto has = [](const std::string& e, const char* text) {
    return e.find(text) != std::string::npos;
  };
  std::string e = error_for(R"({"use_dynamic_shifting": "yes"})");
  EXPECT_TRUE(has(e, "use_dynamic_shifting must be true or false")) << e;
  e = error_for(R"({"shift": 0})");
  EXPECT_TRUE(has(e, "shift must be positive")) << e;
  e = error_for(R"({"shift": "3"})");
  EXPECT_TRUE(has(e, "shift must be a number")) << e;
  e = error_for(R"({"base_shift": null})");
  EXPECT_TRUE(has(e, "base_shift must be a number, got null")) << e;
  e = error_for(R"({"max_shift": [1]})");
  EXPECT_TRUE(has(e, "max_shift must be a number")) << e;
  e = error_for(R"({"base_image_seq_len": 12.5})");
  EXPECT_TRUE(has(e, "base_image_seq_len must be a whole number of tokens >= 1, got 12.5")) << e;
  e = error_for(R"({"max_image_seq_len": 0})");
  EXPECT_TRUE(has(e, "max_image_seq_len must be a whole number")) << e;
  e = error_for(R"({"base_image_seq_len": 4096, "max_image_seq_len": 256})");
  EXPECT_TRUE(has(e, "max_image_seq_len (256) must be greater than base_image_seq_len (4096)"))
      << e;
  e = error_for("[1, 2]");
  EXPECT_TRUE(has(e, "expected a JSON object")) << e;
}

TEST_F(SchedulerConfigTest, SettingsZflowDoesNotRunAreRefused) {
  auto refused = [&](const std::string& json, const char* field) {
    const std::string e = error_for(json);
    EXPECT_NE(e.find(std::string(field) + " is "), std::string::npos) << e;
  };
  refused(R"({"_class_name": "FlowMatchHeunDiscreteScheduler"})", "_class_name");
  refused(R"({"num_train_timesteps": 500})", "num_train_timesteps");
  refused(R"({"time_shift_type": "linear"})", "time_shift_type");
  refused(R"({"shift_terminal": 0.1})", "shift_terminal");
  refused(R"({"use_karras_sigmas": true, "use_beta_sigmas": true})", "use_beta_sigmas");
  refused(R"({"invert_sigmas": true})", "invert_sigmas");
  refused(R"({"stochastic_sampling": true})", "stochastic_sampling");
  // Their defaults are fine, however written.
  EXPECT_NO_THROW(read_scheduler_config(
      write(R"({"num_train_timesteps": 1000.0, "shift_terminal": 0, "invert_sigmas": false})"),
      "flux"));
}

// The respacing flags become the model's own schedule, which a request's "simple" means and
// another choice replaces.
TEST_F(SchedulerConfigTest, RespacingFlagsAreTheModelsSchedule) {
  for (const auto& [flag, schedule] :
       {std::pair{"use_karras_sigmas", SigmaSchedule::kKarras},
        std::pair{"use_exponential_sigmas", SigmaSchedule::kExponential},
        std::pair{"use_beta_sigmas", SigmaSchedule::kBeta}}) {
    const SchedulerConfig c =
        read_scheduler_config(write(std::string("{\"") + flag + "\": true}"), "zimage");
    EXPECT_EQ(c.respacing, schedule) << flag;
    EXPECT_EQ(effective_schedule(c, SigmaSchedule::kSimple), schedule) << flag;
    EXPECT_EQ(effective_schedule(c, SigmaSchedule::kExponential), SigmaSchedule::kExponential);
  }
  const std::string e = error_for(R"({"use_beta_sigmas": true, "use_karras_sigmas": true})");
  EXPECT_NE(e.find("one at most"), std::string::npos) << e;
}

// Z-Image's schedule from a config: static at the given or the config's shift, or dynamic with
// mu on the config's line for its token count, on torch's float32 linspace.
TEST(ZImageSchedule, FromTheConfig) {
  SchedulerConfig c;
  c.shift = 3.0;
  EXPECT_EQ(zimage_config_schedule(c, 8, std::nullopt, 4096).sigmas,
            zimage_schedule(8, 3.0).sigmas);
  EXPECT_EQ(zimage_config_schedule(c, 8, 6.0, 4096).sigmas, zimage_schedule(8, 6.0).sigmas);
  c.use_dynamic_shifting = true;
  EXPECT_EQ(zimage_config_schedule(c, 8, std::nullopt, 4096).sigmas,
            dynamic_shift(8, flux1_mu(4096), SigmaSpacing::kTorchF32).sigmas);
  EXPECT_EQ(zimage_config_schedule(c, 8, 2.0, 4096).sigmas, zimage_schedule(8, 2.0).sigmas);
}

// The release configs give exactly the presets that match diffusers' FLUX.1 schedules.
TEST(FluxSchedule, ReleaseConfigsGiveTheReleaseSchedules) {
  for (const int64_t tokens : {12, 1024, 4096, 9216}) {
    for (const int steps : {1, 4, 28}) {
      EXPECT_EQ(flux1_schedule(flux1_release_scheduler(true), steps, tokens).sigmas,
                flux1_dev_schedule(steps, tokens).sigmas);
      EXPECT_EQ(flux1_schedule(flux1_release_scheduler(false), steps, tokens).sigmas,
                flux1_schnell_schedule(steps).sigmas);
    }
  }
  // Other constants move mu along their own line: (64, 1.0) to (1088, 2.0) puts 576 tokens at
  // mu = 1.5, so sigma 0.5 becomes e^1.5 / (e^1.5 + 1).
  SchedulerConfig c = flux1_release_scheduler(true);
  c.base_shift = 1.0;
  c.max_shift = 2.0;
  c.base_image_seq_len = 64;
  c.max_image_seq_len = 1088;
  const FlowSchedule s = flux1_schedule(c, 2, 576);
  ASSERT_EQ(s.sigmas.size(), 3u);
  EXPECT_NEAR(s.sigmas[1], std::exp(1.5) / (std::exp(1.5) + 1.0), 1e-6);
  // A static shift s maps sigma 0.5 to s / (1 + s).
  c.use_dynamic_shifting = false;
  c.shift = 3.0;
  EXPECT_NEAR(flux1_schedule(c, 2, 576).sigmas[1], 0.75, 1e-6);
}

}  // namespace
}  // namespace zflow::pipeline
