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

#include "core/error.h"
#include "flux_golden.h"
#include "io/image.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux_fill_pipeline");
constexpr double kMinPsnr = 40.0;

const test::FluxGolden& golden() {
  static const test::FluxGolden g(kDir, "flux_fill_tiny_diffusers_cases.json",
                                  test::flux_files_beside_tiny_dev(kDir / "tiny_fill"));
  return g;
}

class FluxFillGolden : public test::FluxTokenizersTest {
 protected:
  static void check(const std::string& name) { golden().check(name, kMinPsnr); }
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
  const FluxPipeline& pipe = golden().pipeline();
  EXPECT_EQ(pipe.variant(), FluxVariant::FillDev);
  FluxRequest r = golden().request("fill");
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
  FluxRequest r = golden().request("fill");
  r.mask->rgb.assign(r.mask->rgb.size(), 255);
  EXPECT_LT(golden().psnr_against("fill", r, "all-white mask"), 30.0);
}

TEST_F(FluxFillGolden, RefusesWhatItCannotFill) {
  const FluxPipeline& pipe = golden().pipeline();
  FluxRequest no_mask = golden().request("fill");
  no_mask.mask.reset();
  EXPECT_THROW(pipe.resolve(no_mask), Error);
  FluxRequest no_image = no_mask;
  no_image.init_image.reset();
  EXPECT_THROW(pipe.resolve(no_image), Error);
  FluxRequest cfg = golden().request("fill");
  cfg.true_cfg_scale = 3.0f;
  cfg.negative_prompt = "blurry";
  EXPECT_THROW(pipe.resolve(cfg), Error);
}

}  // namespace
}  // namespace zflow::pipeline
