// Z-Image Omni against diffusers 0.42.1's ZImageOmniPipeline on tiny random models
// (tools/golden/make_zimage_omni.py: a tiny Omni transformer and SigLIP 2 tower beside the tiny
// Z-Image text encoder and VAE of make_zimage_pipeline.py): one condition image (the output takes
// its size), two of different sizes under CFG at a requested size, a batch of two with CFG
// truncated after the first step, and text alone in Omni's layout. Each output must match
// diffusers' uint8 image with PSNR >= 60 dB (measured: 90 dB to identical; float32 on both
// sides). Not the other Z-Image pipelines' 40: diffusers' layout quirks done plainly measured
// only 32-36 dB here (caption positions without the pad-count shift; SigLIP grids transposed),
// and encoding the condition from unrounded pixels rather than bf16 ones 73-80 dB. Generating
// without the condition image gives 26 dB (a test).
#include <gtest/gtest.h>

#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("zimage_omni");
constexpr double kMinPsnr = 60.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "zimage_omni_tiny_cases.json");
  return c;
}

ZImageFiles omni_files() {
  const fs::path zimage = test::fixture("zimage_pipeline/tiny");
  return {.model_dir = kDir / "tiny_omni",
          .text_encoder = zimage / "text_encoder",
          .vae = zimage / "vae",
          .tokenizer = test::shared_asset("qwen3_tokenizer")};
}

const ZImagePipeline& omni_pipeline() {
  static const ZImagePipeline pipe = ZImagePipeline::load(omni_files());
  return pipe;
}

ZImageRequest request_for(const nlohmann::json& c) {
  ZImageRequest r;
  r.prompt = c["prompt"];
  r.negative_prompt = c.value("negative_prompt", "");
  if (c.contains("width")) r.width = c["width"].get<int>();
  if (c.contains("height")) r.height = c["height"].get<int>();
  r.steps = c["steps"].get<int>();
  r.guidance = c["guidance"].get<float>();
  r.cfg_truncation = c.value("cfg_truncation", 1.0);
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  for (const auto& name : c["images"]) r.references.push_back(io::read_image(kDir / name));
  r.normal_math = cases().normal_math();
  return r;
}

void check_case(const std::string& name) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find(name);
  test::expect_images_match(omni_pipeline().generate(request_for(c)), c["expected"], kDir, kMinPsnr,
                            name);
}

TEST(ZImageOmniGolden, EditOneImage) {
  check_case("edit");
}
TEST(ZImageOmniGolden, TwoImagesWithCfgAtARequestedSize) {
  check_case("two_images_cfg");
}
TEST(ZImageOmniGolden, BatchOfTwoWithCfgTruncation) {
  check_case("batch2");
}
TEST(ZImageOmniGolden, TextOnly) {
  check_case("text_only");
}

TEST(ZImageOmniGolden, TheConditionImageSteersTheOutput) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find("edit");
  ZImageRequest r = request_for(c);
  r.references.clear();
  r.width = 80;
  r.height = 64;
  const auto images = omni_pipeline().generate(r);
  const io::Image want = io::read_image(kDir / c["expected"][0].get<std::string>());
  EXPECT_LT(test::psnr(images.at(0), want), 40.0);  // measured 26.1 dB
}

TEST(ZImageOmniGolden, SettingsAndRefusals) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const ZImagePipeline& pipe = omni_pipeline();
  EXPECT_TRUE(pipe.omni());
  ZImageRequest r = request_for(cases().find("two_images_cfg"));
  r.width.reset();
  r.height.reset();
  const ZImageSettings s = pipe.resolve(r);  // the last image's crop: 70x100 -> 64x96
  EXPECT_EQ(s.mode, ZImageMode::Omni);
  EXPECT_EQ(std::make_pair(s.width, s.height), std::make_pair(64, 96));
  r.init_image = r.references.front();
  EXPECT_NE(test::error_of([&] { pipe.resolve(r); }).find("-r"), std::string::npos);
  r.init_image.reset();
  r.references.push_back(io::Image{40, 80, std::vector<uint8_t>(40 * 80 * 3, 7)});
  EXPECT_NE(test::error_of([&] { pipe.resolve(r); }).find("reference image 3"), std::string::npos);
}

TEST(ZImageOmniGolden, MissingSiglipIsNamed) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));  // loaded before it
  ZImageFiles files = omni_files();
  files.siglip = kDir / "no_such_tower";
  EXPECT_NE(test::error_of([&] { ZImagePipeline::load(files); }).find("no_such_tower"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
