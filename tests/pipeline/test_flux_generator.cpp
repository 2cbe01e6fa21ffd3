// FLUX.1 behind the family-agnostic ImageGenerator: how the common request's cfg_scale,
// negative_prompt and shift map onto diffusers' true CFG and scheduler, the errors for
// combinations diffusers would silently ignore (the server answers them with 422), and what the
// record says. The images themselves are checked against diffusers in test_flux_pipeline.
#include <gtest/gtest.h>

#include "pipeline/flux_pipeline.h"
#include "pipeline/generator.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

const ImageGenerator& tiny_dev() {
  static const auto gen =
      load_generator({.model_dir = test::fixture("flux_pipeline/tiny_dev"),
                      .clip_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_clip_l"),
                      .t5_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_t5")});
  return *gen;
}

GenerationRequest fox() {
  GenerationRequest r;
  r.prompt = "a fox";
  r.width = 32;
  r.height = 32;
  r.steps = 2;
  r.seed = 3;
  return r;
}

#define ZF_REQUIRE_FLUX_TOKENIZERS() \
  ZF_REQUIRE_ASSET(test::shared_asset("flux1_tokenizer/tokenizer_t5/spiece.model"))

TEST(FluxGenerator, CfgScaleWithNegativePromptIsTrueCfg) {
  ZF_REQUIRE_FLUX_TOKENIZERS();
  GenerationRequest r = fox();
  EXPECT_FLOAT_EQ(tiny_dev().resolve(r).cfg_scale, 1.0f);  // none
  r.cfg_scale = 0.0f;                                      // also none
  EXPECT_FLOAT_EQ(tiny_dev().resolve(r).cfg_scale, 1.0f);
  EXPECT_NE(tiny_dev().record(r, {}, 0).parameters.find("CFG scale: 1,"), std::string::npos);

  r.cfg_scale = 4.0f;
  r.negative_prompt = "blur";
  EXPECT_FLOAT_EQ(tiny_dev().resolve(r).cfg_scale, 4.0f);
  const ImageRecord rec = tiny_dev().record(r, {}, 0);
  EXPECT_EQ(rec.parameters.substr(0, rec.parameters.find("Sampler")),
            "a fox\nNegative prompt: blur\nSteps: 2, ");
  EXPECT_NE(rec.parameters.find("CFG scale: 4, Distilled CFG Scale: 3.5"), std::string::npos)
      << rec.parameters;
  EXPECT_EQ(rec.request.at("negative_prompt"), "blur");
  EXPECT_EQ(rec.request.at("cfg_scale"), 4.0);
}

// cfg_scale above 1 without a negative prompt runs true CFG against the empty prompt, as
// stable-diffusion.cpp, ComfyUI and Forge do: the same images as diffusers' FluxPipeline given
// negative_prompt="" (FluxPipeline here, checked against diffusers in test_flux_pipeline).
TEST(FluxGenerator, CfgScaleWithoutNegativePromptSteersFromTheEmptyPrompt) {
  ZF_REQUIRE_FLUX_TOKENIZERS();
  GenerationRequest r = fox();
  r.cfg_scale = 4.0f;
  EXPECT_FLOAT_EQ(tiny_dev().resolve(r).cfg_scale, 4.0f);
  const std::vector<io::Image> got = tiny_dev().generate(r, {});

  const FluxPipeline pipe =
      FluxPipeline::load({.model_dir = test::fixture("flux_pipeline/tiny_dev"),
                          .clip_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_clip_l"),
                          .t5_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_t5")});
  FluxRequest f{.prompt = r.prompt, .width = 32, .height = 32, .steps = 2};
  f.seed = r.seed;
  f.true_cfg_scale = 4.0f;
  f.negative_prompt = "";
  const std::vector<io::Image> want = pipe.generate(f);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(want.size(), 1u);
  EXPECT_EQ(got[0].rgb, want[0].rgb);
  f.true_cfg_scale.reset();  // and true CFG changed the picture
  f.negative_prompt.reset();
  EXPECT_NE(got[0].rgb, pipe.generate(f)[0].rgb);

  const ImageRecord rec = tiny_dev().record(r, {}, 0);
  EXPECT_EQ(rec.parameters.find("Negative prompt"), std::string::npos) << rec.parameters;
  EXPECT_NE(rec.parameters.find("CFG scale: 4,"), std::string::npos) << rec.parameters;
  EXPECT_EQ(rec.request.at("negative_prompt"), "");
}

TEST(FluxGenerator, WhatTrueCfgWouldIgnoreIsAnError) {
  ZF_REQUIRE_FLUX_TOKENIZERS();
  GenerationRequest r = fox();
  r.negative_prompt = "blur";  // a negative prompt without a scale: diffusers would ignore it
  std::string e = test::error_of([&] { tiny_dev().resolve(r); });
  EXPECT_NE(e.find("[flux] negative_prompt is used only by true CFG: set cfg_scale above 1"),
            std::string::npos)
      << e;
  r.cfg_scale = 1.0f;
  EXPECT_NE(test::error_of([&] { tiny_dev().resolve(r); }).find("negative_prompt is used only"),
            std::string::npos);
  r.cfg_scale = 0.5f;  // a scale diffusers treats as none
  e = test::error_of([&] { tiny_dev().resolve(r); });
  EXPECT_NE(e.find("[flux] cfg_scale 0.5: FLUX.1's true CFG takes a scale above 1"),
            std::string::npos)
      << e;
}

// A reference image (sent as data, as the server's are) edits as Kontext: at its Kontext
// resolution unless sized, recorded by its place in the request; more than one is an error.
TEST(FluxGenerator, OneReferenceImageEditsAsKontext) {
  ZF_REQUIRE_FLUX_TOKENIZERS();
  GenerationRequest r = fox();
  r.width.reset();
  r.height.reset();
  r.reference_images.push_back(io::Image{48, 32, std::vector<uint8_t>(48 * 32 * 3, 100)});
  const GenerationSettings s = tiny_dev().resolve(r);
  EXPECT_EQ(s.mode, "edit");
  EXPECT_EQ(s.steps_run, 2);
  EXPECT_EQ(s.width, 1248);  // 3:2 exactly
  EXPECT_EQ(s.height, 832);
  const ImageRecord rec = tiny_dev().record(r, {}, 0);
  EXPECT_EQ(rec.request.at("mode"), "edit");
  EXPECT_EQ(rec.request.at("reference_images"), nlohmann::json::array({"reference_images[0]"}));
  r.reference_images.push_back(r.reference_images.front());
  EXPECT_NE(test::error_of([&] { tiny_dev().resolve(r); }).find("2 reference images"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
