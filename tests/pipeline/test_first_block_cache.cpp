// First Block Cache in the Z-Image and FLUX.1 pipelines against diffusers 0.42.1's hooks on tiny
// models with more blocks (tools/golden/make_first_block_cache.py): Z-Image with and without CFG
// (one cache state, as its pipeline runs both halves in one call) and FLUX.1-dev with and without
// true CFG (the cond and uncond passes keep their own states). Each case's threshold leaves some
// steps skipped and some run in full, with every decision's statistic 0.01 or more from it.
//
// Tolerance: 40 dB on the 8-bit output, as every pipeline golden (zflow measures 83 dB to
// identical). The cases skip 7 to 13 of their 10-16 calls, and the same request without the cache
// lands at 23-39 dB (checked: below 40), so steps that were not skipped, or skipped without the
// stored residual, fail; the decisions themselves are fixed by the margin above.
#include <gtest/gtest.h>

#include "flux_golden.h"
#include "golden_cases.h"
#include "image_psnr.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"
#include "zimage_golden.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("first_block_cache");
constexpr double kMinPsnr = 40.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "first_block_cache_cases.json");
  return c;
}

// Case `c` as the reference ran it, then without the cache, which must not pass.
template <typename Pipeline, typename Request>
void check_case(const Pipeline& pipe, Request r, const nlohmann::json& c) {
  const std::string name = c["name"];
  r.first_block_cache = c["threshold"].get<float>();
  test::expect_images_match(pipe.generate(r), c["expected"], kDir, kMinPsnr, name);
  r.first_block_cache.reset();
  const io::Image want = io::read_image(kDir / c["expected"][0].get<std::string>());
  const double db = test::psnr(pipe.generate(r).front(), want);
  std::printf("  %s without the cache: PSNR %.1f dB\n", name.c_str(), db);
  EXPECT_LT(db, kMinPsnr) << name;
}

const ZImagePipeline& zimage() {
  static const ZImagePipeline pipe =
      ZImagePipeline::load({.model_dir = test::fixture("zimage_pipeline") / "tiny",
                            .diffusion_model = kDir / "zimage_transformer",
                            .tokenizer = test::shared_asset("qwen3_tokenizer")});
  return pipe;
}

ZImageRequest zimage_request(const nlohmann::json& c) {
  return test::zimage_txt2img_request(c, cases().normal_math());
}

void check_zimage(const std::string& name) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find(name);
  check_case(zimage(), zimage_request(c), c);
}

void check_flux(const std::string& name) {
  ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_t5/spiece.model"));
  static const FluxPipeline pipe =
      FluxPipeline::load({.model_dir = test::flux_tiny_dev(),
                          .diffusion_model = kDir / "flux_transformer",
                          .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                          .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
  const nlohmann::json& c = cases().find(name);
  check_case(pipe, test::flux_request(c, kDir, cases()), c);
}

TEST(FirstBlockCacheGolden, ZImageWithoutCfg) {
  check_zimage("zimage_turbo");
}
TEST(FirstBlockCacheGolden, ZImageWithCfgInOneState) {
  check_zimage("zimage_cfg");
}
TEST(FirstBlockCacheGolden, Flux1Dev) {
  check_flux("flux_dev");
}
TEST(FirstBlockCacheGolden, Flux1TrueCfgInTwoStates) {
  check_flux("flux_true_cfg");
}

// What the cache cannot serve is refused by name; requests with it never share forwards.
TEST(FirstBlockCacheGolden, RefusalsAndNoSharedForwards) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  ZImageRequest r = zimage_request(cases().find("zimage_turbo"));
  EXPECT_TRUE(zimage().can_share_forwards(r, r));
  r.first_block_cache = 0.1f;
  EXPECT_FALSE(zimage().can_share_forwards(r, r));
  r.first_block_cache = -1.0f;
  EXPECT_NE(test::error_of([&] { zimage().resolve(r); }).find("threshold must be positive"),
            std::string::npos);
  const ZImagePipeline one_layer =
      ZImagePipeline::load({.model_dir = test::fixture("zimage_pipeline") / "tiny",
                            .tokenizer = test::shared_asset("qwen3_tokenizer")});
  r.first_block_cache = 0.1f;
  EXPECT_NE(test::error_of([&] { one_layer.resolve(r); }).find("has one main layer"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
