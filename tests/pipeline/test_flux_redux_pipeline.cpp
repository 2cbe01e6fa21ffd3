// FLUX.1 Redux against diffusers 0.42.1's FluxPriorReduxPipeline (with its text encoders) feeding
// FluxPipeline, on tiny random models (tools/golden/make_flux_redux.py: a SigLIP tower of 16
// patches and a Redux embedder beside the tiny FLUX.1 dev folder; real CLIP-L and T5 tokenizers):
// variations of a 50x38 picture at 64x48, and a batch of two with a separate T5 prompt at 48x64;
// and, built from diffusers' outputs in one line each (make_flux_redux.py), a Redux strength of
// 0.4 (the image tokens times it) and two pictures (the second's tokens after the first's).
// Each output must match diffusers' uint8 image with PSNR >= 60 dB: measured 88 dB to identical,
// while leaving the picture's tokens out measures 47 dB on this tiny model (its text path moves
// the image little; 60 keeps that a failure, checked below, with the margin of the other FLUX
// goldens' 40 dB against their measured 70-85). The models themselves are checked in
// test_siglip_vision.cpp.
#include <gtest/gtest.h>

#include "core/error.h"
#include "flux_golden.h"
#include "io/image.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux_redux");
constexpr double kMinPsnr = 60.0;

FluxFiles redux_files() {
  FluxFiles files{.model_dir = test::flux_tiny_dev(),
                  .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                  .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")};
  files.redux = kDir / "tiny_redux";
  return files;
}

const test::FluxGolden& golden() {
  static const test::FluxGolden g(kDir, "flux_redux_tiny_cases.json", redux_files());
  return g;
}

class FluxReduxGolden : public test::FluxTokenizersTest {
 protected:
  static void check(const std::string& name) { golden().check(name, kMinPsnr); }
};

TEST_F(FluxReduxGolden, VariationsOfAPicture) {
  check("redux");
}
TEST_F(FluxReduxGolden, BatchWithPrompt2) {
  check("redux_batch2_prompt2");
}

TEST_F(FluxReduxGolden, StrengthWeighsTheImageTokens) {
  check("redux_strength");
  // Full strength is the "redux" case, which the weaker one must not be.
  FluxRequest full = golden().request("redux_strength");
  full.redux_strength.reset();
  EXPECT_LT(golden().psnr_against("redux_strength", full, "strength 1"), kMinPsnr);
}
TEST_F(FluxReduxGolden, TwoPicturesOneAfterTheOther) {
  check("redux_two_images");
  FluxRequest one = golden().request("redux_two_images");
  one.references.pop_back();
  EXPECT_LT(golden().psnr_against("redux_two_images", one, "the first picture alone"), kMinPsnr);
}

// Without the picture the same request is plain text-to-image, and misses.
TEST_F(FluxReduxGolden, ThePictureMatters) {
  FluxRequest r = golden().request("redux");
  r.references.clear();
  EXPECT_LT(golden().psnr_against("redux", r, "no Redux image"), kMinPsnr);
}

TEST_F(FluxReduxGolden, SettingsAndRefusals) {
  const FluxPipeline& pipe = golden().pipeline();
  FluxRequest r = golden().request("redux");
  const FluxSettings s = pipe.resolve(r);
  EXPECT_TRUE(s.redux);
  EXPECT_EQ(s.mode, FluxMode::TextToImage);  // not Kontext's edit
  EXPECT_EQ(s.max_sequence_length, 512);     // the prior's T5 length
  r.true_cfg_scale = 2.0f;
  r.negative_prompt = "blurry";
  EXPECT_NE(test::error_of([&] { pipe.resolve(r); }).find("Redux runs without true CFG"),
            std::string::npos);
  FluxRequest negative = golden().request("redux");
  negative.redux_strength = -1.0f;
  EXPECT_NE(test::error_of([&] { pipe.resolve(negative); }).find("Redux strength"),
            std::string::npos);
}

TEST_F(FluxReduxGolden, FilesAreCheckedAsTheyLoad) {
  // The embedder alone needs the SigLIP tower named.
  FluxFiles files = redux_files();
  files.redux = kDir / "tiny_redux" / "image_embedder";
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(files); }).find("--siglip"), std::string::npos);
  files.siglip = kDir / "tiny_redux" / "image_encoder";
  EXPECT_NO_THROW(FluxPipeline::load(files));
  // The Redux folder is no model of its own.
  files = redux_files();
  files.model_dir = kDir / "tiny_redux";
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(files); }).find("give it with --redux"),
            std::string::npos);
  // A tower where the embedder belongs names what it holds.
  files = redux_files();
  files.redux = kDir / "tiny_redux" / "image_encoder";
  files.siglip = kDir / "tiny_redux" / "image_encoder";
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(files); }).find("Redux image embedder"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
