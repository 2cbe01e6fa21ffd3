// Z-Image with a ControlNet, end to end, against diffusers 0.42.1's ZImageControlNetPipeline and
// ZImageControlNetInpaintPipeline (tools/golden/make_zimage_controlnet_pipeline.py): the tiny
// Z-Image pipeline with a tiny 1.0 ControlNet (16 channels) and a tiny 2.1 one (33 channels,
// refiner hints added to the main noise refiner as VideoX-Fun does), loaded from single files
// without config. Cases: Turbo settings, a batch of two with a control image of another size
// (Lanczos-resized), CFG with a negative prompt, and ControlNet inpainting.
//
// Tolerance: PSNR >= 40 dB on the 8-bit output, the bound of the plain pipeline's goldens
// (test_zimage_pipeline.cpp: the same float32 arithmetic in another summation order). The
// ControlNet moves the tiny model's pixels by 18-26 levels on average (the generator prints it),
// so an image made without it, or with the hints in the wrong place, is far below 40 dB.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/generator.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const fs::path kDir = test::fixture("zimage_controlnet_pipeline");
const fs::path kModel = test::fixture("zimage_pipeline/tiny");
constexpr double kMinPsnr = 40.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "zimage_controlnet_pipeline_cases.json");
  return c;
}

const ZImagePipeline& pipeline_with(const std::string& controlnet_file) {
  static std::map<std::string, ZImagePipeline> pipes;
  auto it = pipes.find(controlnet_file);
  if (it == pipes.end())
    it = pipes
             .emplace(controlnet_file,
                      ZImagePipeline::load({.model_dir = kModel,
                                            .tokenizer = test::shared_asset("qwen3_tokenizer"),
                                            .controlnet = kDir / controlnet_file}))
             .first;
  return it->second;
}

// The case's request. The size is left to the pipeline when the control image has it already
// (the default is the control image's size).
ZImageRequest request_for(const nlohmann::json& c) {
  ZImageRequest r;
  r.prompt = c["prompt"];
  r.negative_prompt = c.value("negative_prompt", "");
  r.control_image = io::read_image(kDir / c["control_image"].get<std::string>());
  if (r.control_image->width != c["width"].get<int>() ||
      r.control_image->height != c["height"].get<int>()) {
    r.width = c["width"].get<int>();
    r.height = c["height"].get<int>();
  }
  r.control_scale = c["scale"].get<float>();
  r.steps = c["steps"].get<int>();
  r.guidance = c["guidance"].get<float>();
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  if (c.contains("init_image")) r.init_image = io::read_image(kDir / c["init_image"]);
  if (c.contains("mask_image")) r.mask = io::read_image(kDir / c["mask_image"]);
  r.normal_math = cases().normal_math();
  return r;
}

void check_case(const std::string& name) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find(name);
  const ZImagePipeline& pipe = pipeline_with(c["controlnet_file"]);
  const ZImageRequest request = request_for(c);
  const auto images = pipe.generate(request);
  test::expect_images_match(images, c["expected"], kDir, kMinPsnr, name);
}

TEST(ZImageControlNetPipelineGolden, Union1Turbo) {
  check_case("v1_turbo");
}
TEST(ZImageControlNetPipelineGolden, Union1BatchWithResizedControlImage) {
  check_case("v1_batch2_resized");
}
TEST(ZImageControlNetPipelineGolden, Union21WithCfg) {
  check_case("v21_cfg");
}
TEST(ZImageControlNetPipelineGolden, Union21Inpaint) {
  check_case("v21_inpaint");
}

TEST(ZImageControlNetPipeline, ResolvesModesAndSizes) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const ZImagePipeline& pipe = pipeline_with("zimage_controlnet_pipeline_tiny_v21.safetensors");
  ZImageRequest r = request_for(cases().find("v21_inpaint"));
  const ZImageSettings inpaint = pipe.resolve(r);
  EXPECT_EQ(inpaint.mode, ZImageMode::ControlInpaint);
  EXPECT_TRUE(inpaint.controlled);
  EXPECT_EQ(inpaint.strength, 1.0);  // from noise: no strength applies
  r.mask.reset();
  EXPECT_EQ(pipe.resolve(r).mode, ZImageMode::ImageToImage);
  r.init_image.reset();
  r.control_image =
      io::read_image(kDir / "zimage_controlnet_pipeline_v1_batch2_resized_control.png");
  const ZImageSettings t2i = pipe.resolve(r);
  EXPECT_EQ(t2i.mode, ZImageMode::TextToImage);
  EXPECT_EQ(t2i.width, 64);  // 71x53 rounded down to multiples of 16
  EXPECT_EQ(t2i.height, 48);
  r.control_scale = -1.0f;
  EXPECT_THAT(test::error_of([&] { pipe.resolve(r); }), HasSubstr("control scale must be >= 0"));
}

TEST(ZImageControlNetPipeline, ExplainsWhatIsMissingOrDoesNotFit) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  static const ZImagePipeline plain = ZImagePipeline::load(
      {.model_dir = kModel, .tokenizer = test::shared_asset("qwen3_tokenizer")});
  ZImageRequest r = request_for(cases().find("v1_turbo"));
  EXPECT_THAT(test::error_of([&] { plain.resolve(r); }),
              HasSubstr("a control image needs a ControlNet (--control-net FILE)"));
  // Inpainting needs the 33-channel (2.x) files.
  ZImageRequest inpaint = request_for(cases().find("v21_inpaint"));
  const ZImagePipeline& v1 = pipeline_with("zimage_controlnet_pipeline_tiny_v1.safetensors");
  EXPECT_THAT(test::error_of([&] { v1.generate(inpaint); }),
              HasSubstr("inpainting needs a ControlNet of 33 input channels"));
  // A ControlNet made for another transformer.
  EXPECT_THAT(test::error_of([&] {
                ZImagePipeline::load(
                    {.model_dir = kModel,
                     .tokenizer = test::shared_asset("qwen3_tokenizer"),
                     .controlnet =
                         test::fixture("zimage_controlnet/zimage_controlnet_tiny_v1.safetensors")});
              }),
              HasSubstr("expected [32, 4 x control_in_dim]"));
}

// The generator records the ControlNet, its weight and the control image.
TEST(ZImageControlNetPipeline, ImagesRecordTheControlNet) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  ModelFiles files;
  files.model_dir = kModel;
  files.tokenizer = test::shared_asset("qwen3_tokenizer");
  files.controlnets = {kDir / "zimage_controlnet_pipeline_tiny_v1.safetensors"};
  const auto generator = load_generator(files);
  GenerationRequest r;
  r.prompt = "a fox";
  r.controls = {
      {io::read_image(kDir / "zimage_controlnet_pipeline_control.png"), 0.6f, {}, {}, {}}};
  const ImageRecord record = generator->record(r, {.control_images = {"edges.png"}}, 0);
  EXPECT_THAT(
      record.parameters,
      HasSubstr("ControlNet 0: \"Model: zimage_controlnet_pipeline_tiny_v1, Weight: 0.6\""));
  EXPECT_EQ(record.request["controlnet"], "zimage_controlnet_pipeline_tiny_v1");
  EXPECT_EQ(record.request["control_image"], "edges.png");
  EXPECT_EQ(record.request["width"], 64);
  EXPECT_NEAR(record.request["control_scale"].get<double>(), 0.6, 1e-6);
}

}  // namespace
}  // namespace zflow::pipeline
