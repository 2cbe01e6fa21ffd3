// FLUX.1 Fill against diffusers 0.42.1's FluxFillPipeline on a tiny random model
// (tools/golden/make_flux_fill_pipeline.py; text encoders and VAE of the tiny FLUX.1 dev folder,
// real CLIP-L and T5 tokenizers): from pure noise with guidance 30, a batch of two from part
// way along the schedule with a separate T5 prompt, and an init image and mask of another size.
// Each output must match diffusers' uint8 image with PSNR >= 40 dB (the tolerance argument of
// test_flux_pipeline.cpp). The fixture's mask cuts through latent cells and the transformer's
// condition columns carry a gain, so mistakes show (measured): the folded mask's pixels in
// (dx, dy) order give 22-26 dB, the masked picture's posterior mean in place of its sample
// 26-32 dB, an all-white mask 21.6 dB (checked below).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "flux_golden.h"
#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux_fill_pipeline");
constexpr double kMinPsnr = 40.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "flux_fill_tiny_diffusers_cases.json");
  return c;
}

// The Fill folder holds its transformer and scheduler; the rest is the dev folder's.
const FluxPipeline& fill_pipeline() {
  static const FluxPipeline pipe =
      FluxPipeline::load(test::flux_files_beside_tiny_dev(kDir / "tiny_fill"));
  return pipe;
}

FluxRequest request_for(const nlohmann::json& c) {
  return test::flux_request(c, kDir, cases());
}

class FluxFillGolden : public ::testing::Test {
 protected:
  void SetUp() override {
    ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_t5/spiece.model"));
    ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_clip_l/vocab.json"));
  }
  static void check(const std::string& name) {
    const nlohmann::json& c = cases().find(name);
    test::expect_images_match(fill_pipeline().generate(request_for(c)), c["expected"], kDir,
                              kMinPsnr, name);
  }
};

TEST_F(FluxFillGolden, FromNoiseWithGuidance30) {
  check("fill");
}
TEST_F(FluxFillGolden, BatchFromPartWayWithPrompt2) {
  check("fill_batch2_strength");
}
TEST_F(FluxFillGolden, InitImageAndMaskOfAnotherSize) {
  check("fill_resized");
}

TEST_F(FluxFillGolden, DetectedWithFillDefaults) {
  const FluxPipeline& pipe = fill_pipeline();
  EXPECT_EQ(pipe.variant(), FluxVariant::FillDev);
  FluxRequest r = request_for(cases().find("fill"));
  r.steps.reset();
  r.guidance.reset();
  const FluxSettings s = pipe.resolve(r);
  EXPECT_EQ(s.mode, FluxMode::Inpaint);
  EXPECT_EQ(s.steps, 50);  // FluxFillPipeline's defaults
  EXPECT_EQ(s.guidance, 30.0f);
  EXPECT_EQ(s.strength, 1.0);
  EXPECT_EQ(s.max_sequence_length, 512);
}

// The mask is read: an all-white one (repaint everything) gives another image.
TEST_F(FluxFillGolden, TheMaskMatters) {
  const nlohmann::json& c = cases().find("fill");
  FluxRequest r = request_for(c);
  r.mask->rgb.assign(r.mask->rgb.size(), 255);
  const io::Image want = io::read_image(kDir / c["expected"][0].get<std::string>());
  const double psnr = test::psnr(fill_pipeline().generate(r).front(), want);
  std::printf("  all-white mask: PSNR %.1f dB\n", psnr);
  EXPECT_LT(psnr, 30.0);
}

TEST_F(FluxFillGolden, RefusesWhatItCannotFill) {
  const FluxPipeline& pipe = fill_pipeline();
  FluxRequest no_mask = request_for(cases().find("fill"));
  no_mask.mask.reset();
  EXPECT_THROW(pipe.resolve(no_mask), Error);
  FluxRequest no_image = no_mask;
  no_image.init_image.reset();
  EXPECT_THROW(pipe.resolve(no_image), Error);
  FluxRequest cfg = request_for(cases().find("fill"));
  cfg.true_cfg_scale = 3.0f;
  cfg.negative_prompt = "blurry";
  EXPECT_THROW(pipe.resolve(cfg), Error);
}

}  // namespace
}  // namespace zflow::pipeline
