// The Z-Image and FLUX.1 pipelines with other samplers and sigma schedules, against diffusers
// 0.42.1 running the same tiny models (tools/golden/make_sampler_pipelines.py): Karras,
// exponential and beta sigmas from diffusers' own scheduler, Heun and DPM++ 2M from k-diffusion
// 0.1.1 driven by the pipelines' own loops (CFG with truncation, batches, FLUX's embedded
// guidance).
//
// Tolerance: as every pipeline golden, 40 dB on the 8-bit output (float32 on both sides, summed
// in another order). Each case run with the default Euler on the model's schedule lands far below
// it (measured 24.8-34.8 dB; checked: under 35), so a sampler or schedule that is ignored or
// mixed up fails. zflow matches these cases at 88 dB to identical.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <string>

#include "flux_golden.h"
#include "golden_cases.h"
#include "image_psnr.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"
#include "zimage_golden.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("sampler_pipeline");
constexpr double kMinPsnr = 40.0;
constexpr double kDefaultSamplingMaxPsnr = 35.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "sampler_pipeline_cases.json");
  return c;
}

SamplingChoice sampling_of(const nlohmann::json& c) {
  const auto sampler = parse_flow_sampler(c["sampler"].get<std::string>());
  const auto schedule = parse_sigma_schedule(c["scheduler"].get<std::string>());
  if (!sampler || !schedule) fail("[test] case {}: unknown sampler or scheduler", c.dump());
  return {*sampler, *schedule};
}

const ZImagePipeline& zimage() {
  static const ZImagePipeline pipe =
      ZImagePipeline::load({.model_dir = test::fixture("zimage_pipeline") / "tiny",
                            .tokenizer = test::shared_asset("qwen3_tokenizer")});
  return pipe;
}

ZImageRequest zimage_request(const nlohmann::json& c) {
  ZImageRequest r = test::zimage_txt2img_request(c, cases().normal_math());
  r.sampling = sampling_of(c);
  return r;
}

// Case `c` as the reference ran it, then with the default sampling, which must not pass.
template <typename Pipeline, typename Request>
void check_case(const Pipeline& pipe, Request r, const nlohmann::json& c) {
  const std::string name = c["name"];
  test::expect_images_match(pipe.generate(r), c["expected"], kDir, kMinPsnr, name);
  r.sampling = {};
  const io::Image want = io::read_image(kDir / c["expected"][0].get<std::string>());
  const double db = test::psnr(pipe.generate(r).front(), want);
  std::printf("  %s with Euler on the model's schedule: PSNR %.1f dB\n", name.c_str(), db);
  EXPECT_LT(db, kDefaultSamplingMaxPsnr) << name;
}

void check_zimage(const std::string& name) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find(name);
  check_case(zimage(), zimage_request(c), c);
}

TEST(SamplerPipelineGolden, ZImageDpmPP2M) {
  check_zimage("zimage_dpmpp2m");
}
TEST(SamplerPipelineGolden, ZImageHeunKarrasWithCfgTruncation) {
  check_zimage("zimage_heun_karras_cfg");
}
TEST(SamplerPipelineGolden, ZImageEulerBeta) {
  check_zimage("zimage_euler_beta");
}
TEST(SamplerPipelineGolden, ZImageDpmPP2MExponentialBatchWithCfg) {
  check_zimage("zimage_dpmpp2m_exponential_batch2");
}

void check_flux(const std::string& name) {
  ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_t5/spiece.model"));
  static const FluxPipeline pipe =
      FluxPipeline::load({.model_dir = test::flux_tiny_dev(),
                          .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                          .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
  const nlohmann::json& c = cases().find(name);
  FluxRequest r = test::flux_request(c, kDir, cases());
  r.sampling = sampling_of(c);
  check_case(pipe, r, c);
}

TEST(SamplerPipelineGolden, Flux1DevDpmPP2MKarras) {
  check_flux("flux_dpmpp2m_karras");
}
TEST(SamplerPipelineGolden, Flux1DevHeunBeta) {
  check_flux("flux_heun_beta");
}

// A folder whose scheduler config respaces its sigmas (a diffusers pipeline saved with
// use_beta_sigmas) runs that schedule when the request leaves it to the model ("simple"), as
// diffusers does with that folder: the golden case "zimage_euler_beta"; another choice replaces
// it.
TEST(SamplerPipelineGolden, TheFoldersRespacingIsTheModelsSchedule) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const fs::path tiny = test::fixture("zimage_pipeline") / "tiny";
  const fs::path dir =
      fs::temp_directory_path() / ("zflow_beta_folder_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "scheduler");
  for (const char* part : {"model_index.json", "text_encoder", "transformer", "vae"})
    fs::create_symlink(fs::absolute(tiny / part), dir / part);
  nlohmann::json config =
      nlohmann::json::parse(std::ifstream(tiny / "scheduler" / "scheduler_config.json"));
  config["use_beta_sigmas"] = true;
  std::ofstream(dir / "scheduler" / "scheduler_config.json") << config.dump();
  const ZImagePipeline pipe =
      ZImagePipeline::load({.model_dir = dir, .tokenizer = test::shared_asset("qwen3_tokenizer")});
  fs::remove_all(dir);
  const nlohmann::json& c = cases().find("zimage_euler_beta");
  ZImageRequest r = test::zimage_txt2img_request(c, cases().normal_math());
  EXPECT_EQ(pipe.resolve(r).schedule, SigmaSchedule::kBeta);
  test::expect_images_match(pipe.generate(r), c["expected"], kDir, kMinPsnr, "folder's beta");
  r.sampling.schedule = SigmaSchedule::kKarras;
  EXPECT_EQ(pipe.resolve(r).schedule, SigmaSchedule::kKarras);
}

// Requests with different sampling never share forwards (each runs its own loop).
TEST(SamplerPipelineGolden, OnlyEqualSamplingSharesForwards) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const ZImageRequest a = zimage_request(cases().find("zimage_dpmpp2m"));
  ZImageRequest b = a;
  EXPECT_TRUE(zimage().can_share_forwards(a, b));
  b.sampling.sampler = FlowSampler::kHeun;
  EXPECT_FALSE(zimage().can_share_forwards(a, b));
  b = a;
  b.sampling.schedule = SigmaSchedule::kKarras;
  EXPECT_FALSE(zimage().can_share_forwards(a, b));
}

}  // namespace
}  // namespace zflow::pipeline
