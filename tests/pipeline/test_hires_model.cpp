// The hires fix's second pass on another model (A1111's hr_checkpoint_name) through the generator
// every caller uses, against diffusers' pipelines chained (tools/golden/make_hires_model.py): a
// Z-Image draft's latents resized ("Latent") and repainted by FLUX.1-dev under a prompt of the
// second pass's own, and a FLUX.1-dev batch of two upscaled by Lanczos and repainted by Z-Image
// with CFG against a negative prompt of its own. 40 dB on the 8-bit output, as every pipeline
// golden; the first case under the first prompt lands far below it.
#include <gtest/gtest.h>

#include <cstdio>

#include "flux_golden.h"
#include "golden_cases.h"
#include "hires_golden.h"
#include "image_psnr.h"
#include "pipeline/generator.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("hires_model");
constexpr double kMinPsnr = 40.0;

class HiresModel : public test::FluxTokenizersTest {
 protected:
  void SetUp() override {
    test::FluxTokenizersTest::SetUp();
    ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  }

  static const test::GoldenCases& cases() {
    static const test::GoldenCases c(kDir / "hires_model_cases.json");
    return c;
  }
  static std::shared_ptr<const ImageGenerator> zimage() {
    static const std::shared_ptr<const ImageGenerator> g =
        load_generator({.model_dir = test::fixture("zimage_pipeline") / "tiny",
                        .tokenizer = test::shared_asset("qwen3_tokenizer")});
    return g;
  }
  static std::shared_ptr<const ImageGenerator> flux() {
    static const std::shared_ptr<const ImageGenerator> g =
        load_generator({.model_dir = test::flux_tiny_dev(),
                        .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                        .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
    return g;
  }
  static GenerationRequest request(const char* name, std::shared_ptr<const ImageGenerator> model) {
    GenerationRequest r = test::hires_case_request(cases().find(name), cases().normal_math());
    r.hires->model = std::move(model);
    return r;
  }
};

TEST_F(HiresModel, ZImageDraftLatentsRepaintedByFlux) {
  const nlohmann::json& c = cases().find("zimage_to_flux_latent");
  const GenerationRequest r = request("zimage_to_flux_latent", flux());
  const std::vector<io::Image> images = zimage()->generate(r, {});
  test::expect_images_match(images, c["expected"], kDir, kMinPsnr, "zimage to flux");

  const ImageRecord record = zimage()->record(r, {}, 0);
  EXPECT_NE(record.parameters.find(", Model: tiny,"), std::string::npos) << record.parameters;
  EXPECT_NE(record.parameters.find("Hires upscaler: Latent, Hires checkpoint: tiny_dev, Hires "
                                   "prompt: \"a red fox in fresh snow, detailed fur, soft light\""),
            std::string::npos)
      << record.parameters;
  EXPECT_EQ(record.request["hires"]["model"], "tiny_dev");
  EXPECT_EQ(zimage()->resolve(r).width, 64);

  GenerationRequest first_prompt = r;
  first_prompt.hires->prompt.reset();
  const double db = test::psnr(zimage()->generate(first_prompt, {}).front(), images.front());
  std::printf("  repainted under the first prompt instead: PSNR %.1f dB\n", db);
  EXPECT_LT(db, kMinPsnr);
}

TEST_F(HiresModel, FluxBatchRepaintedByZImageWithItsOwnCfg) {
  const nlohmann::json& c = cases().find("flux_to_zimage_lanczos_batch2");
  const GenerationRequest r = request("flux_to_zimage_lanczos_batch2", zimage());
  std::vector<int> steps;
  RunControl control;
  control.on_step = [&](const StepProgress& p) { steps.push_back(p.step); };
  test::expect_images_match(flux()->generate(r, control), c["expected"], kDir, kMinPsnr,
                            "flux to zimage");
  const GenerationSettings s = flux()->resolve(r);
  EXPECT_EQ(s.steps_run, 3 + 2) << "3 first steps, then 4 * 0.5 for both images in one run";
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 5}));
  const ImageRecord record = flux()->record(r, {}, 1);
  EXPECT_NE(record.parameters.find("Hires checkpoint: tiny, Hires negative prompt: \"blurry, low "
                                   "quality\", Hires CFG Scale: 4"),
            std::string::npos)
      << record.parameters;
  EXPECT_EQ(record.request["hires"]["cfg_scale"], 4.0);
}

// What was set for the first model stays with it: Z-Image's CFG and negative prompt do not reach
// FLUX.1-dev (which refuses a negative prompt without true CFG) unless the second pass asks for
// CFG of its own; Z-Image has no guidance to take.
TEST_F(HiresModel, SettingsOfTheFirstModelStayWithIt) {
  GenerationRequest r = request("zimage_to_flux_latent", flux());
  r.cfg_scale = 4.0f;
  r.negative_prompt = "blurry";
  r.cfg_normalization = 1.0f;
  EXPECT_EQ(zimage()->resolve(r).width, 64);
  r.hires->cfg_scale = 2.0f;  // FLUX.1's true CFG, which takes the negative prompt
  EXPECT_EQ(zimage()->resolve(r).width, 64);
  r.hires->cfg_scale = 0.5f;
  EXPECT_NE(test::error_of([&] {
              zimage()->resolve(r);
            }).find("[hires] the second pass on tiny_dev: [flux] cfg_scale 0.5"),
            std::string::npos);

  GenerationRequest to_zimage = request("flux_to_zimage_lanczos_batch2", zimage());
  to_zimage.hires->guidance = 3.5f;
  EXPECT_NE(test::error_of([&] {
              flux()->resolve(to_zimage);
            }).find("[hires] the second pass on tiny: [zimage] guidance"),
            std::string::npos);
}

// Latents pass only between models that share a latent space: FLUX.2 has its own, so a latent
// upscaler asked for by name is refused either way round, and A1111's default one gives way to
// Lanczos.
TEST_F(HiresModel, LatentsPassOnlyWithinOneLatentSpace) {
  EXPECT_EQ(zimage()->latent_space(), flux()->latent_space());
  const std::shared_ptr<const ImageGenerator> klein =
      load_generator({.model_dir = test::fixture("flux2_pipeline") / "tiny_klein",
                      .tokenizer = test::shared_asset("qwen3_tokenizer")});
  EXPECT_FALSE(klein->latent_space());
  GenerationRequest r = request("zimage_to_flux_latent", klein);
  EXPECT_NE(test::error_of([&] {
              zimage()->resolve(r);
            }).find("Latent hands latents to the second pass, which FLUX.2"),
            std::string::npos);
  r.hires->latent_by_default = true;
  EXPECT_EQ(zimage()->resolve(r).width, 64);
  EXPECT_NE(zimage()->record(r, {}, 0).parameters.find("Hires upscaler: Lanczos"),
            std::string::npos);

  GenerationRequest from_klein = request("zimage_to_flux_latent", flux());
  from_klein.cfg_scale.reset();
  EXPECT_NE(test::error_of([&] {
              klein->resolve(from_klein);
            }).find("Latent resizes latents, which FLUX.2"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
