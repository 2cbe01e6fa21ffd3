// FLUX.1 Kontext against diffusers 0.42.1's FluxKontextPipeline on the tiny FLUX.1 dev models
// (tools/golden/make_flux_kontext_pipeline.py; Kontext has dev's architecture, so the folder
// holds only its model_index and scheduler; real CLIP-L and T5 tokenizers): a landscape
// reference edited at its own aspect, and a portrait reference of odd size with a batch of two
// under true CFG. Each output must match diffusers' uint8 image with PSNR >= 55 dB: measured
// 72-77 dB, while the likeliest mistake, the reference's tokens at position index 0 like the
// noisy ones instead of 1, still gives 43-46 dB on this tiny model (the 40 dB of
// test_flux_pipeline.cpp would pass it). Generating without the reference gives 21 dB (checked
// below).
#include <gtest/gtest.h>

#include "core/error.h"
#include "flux_golden.h"
#include "io/image.h"
#include "pipeline/flux_kontext.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux_kontext_pipeline");
constexpr double kMinPsnr = 55.0;

// The Kontext folder holds only its scheduler: the models are tiny_dev's.
FluxFiles kontext_files() {
  FluxFiles files = test::flux_files_beside_tiny_dev(kDir / "tiny_kontext");
  files.diffusion_model = test::flux_tiny_dev() / "transformer";
  return files;
}

const test::FluxGolden& golden() {
  static const test::FluxGolden g(kDir, "flux_kontext_tiny_diffusers_cases.json", kontext_files());
  return g;
}

class FluxKontextGolden : public test::FluxTokenizersTest {
 protected:
  static void check(const std::string& name) { golden().check(name, kMinPsnr); }
};

TEST_F(FluxKontextGolden, EditsALandscapeReference) {
  check("kontext");
}
TEST_F(FluxKontextGolden, PortraitReferenceBatchWithTrueCfg) {
  check("kontext_batch2_true_cfg");
}

// Without the reference the same request is plain text-to-image, and misses.
TEST_F(FluxKontextGolden, TheReferenceMatters) {
  FluxRequest r = golden().request("kontext");
  r.references.clear();
  EXPECT_LT(golden().psnr_against("kontext", r, "no reference"), 30.0);
}

// Kontext inpainting against FluxKontextInpaintPipeline
// (tools/golden/make_flux_kontext_inpaint.py): the picture at its own size (diffusers'
// _auto_resize=False: -W / -H here) as its own reference, a batch of two under true CFG with the
// pipeline's defaults (strength 1, guidance 3.5); and at the picture's Kontext resolution with a
// separate reference at its own, strength 0.8. Same bound.
const test::FluxGolden& inpaint_golden() {
  static const test::FluxGolden g(test::fixture("flux_kontext_inpaint"),
                                  "flux_kontext_inpaint_tiny_diffusers_cases.json",
                                  kontext_files());
  return g;
}

TEST_F(FluxKontextGolden, InpaintsWithThePictureAsItsOwnReference) {
  inpaint_golden().check("kontext_inpaint", kMinPsnr);
}
TEST_F(FluxKontextGolden, InpaintsAtTheKontextResolutionWithAnotherReference) {
  const FluxSettings s =
      inpaint_golden().pipeline().resolve(inpaint_golden().request("kontext_inpaint_reference"));
  EXPECT_EQ(s.mode, FluxMode::Inpaint);
  EXPECT_TRUE(s.kontext_inpaint);
  EXPECT_EQ(s.width, 1184);  // the 64x48 picture's Kontext resolution
  EXPECT_EQ(s.height, 880);
  inpaint_golden().check("kontext_inpaint_reference", kMinPsnr);
}

// The same request on FLUX.1 dev is FluxInpaintPipeline's inpainting (no reference tokens, the
// picture's posterior sampled), and misses.
TEST_F(FluxKontextGolden, InpaintingNeedsKontext) {
  const test::FluxGolden dev(test::fixture("flux_kontext_inpaint"),
                             "flux_kontext_inpaint_tiny_diffusers_cases.json",
                             {.model_dir = test::flux_tiny_dev(),
                              .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                              .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
  FluxRequest r = dev.request("kontext_inpaint");
  r.strength = 1.0;
  r.guidance = 3.5f;
  EXPECT_LT(dev.psnr_against("kontext_inpaint", r, "FLUX.1 dev inpainting"), kMinPsnr);
}

TEST_F(FluxKontextGolden, DetectedWithDevDefaultsAndTheReferencesSize) {
  const FluxPipeline& pipe = golden().pipeline();
  EXPECT_EQ(pipe.variant(), FluxVariant::KontextDev);
  FluxRequest r = golden().request("kontext");
  r.steps.reset();
  r.guidance.reset();
  r.width.reset();
  r.height.reset();
  const FluxSettings s = pipe.resolve(r);
  EXPECT_EQ(s.mode, FluxMode::Edit);
  EXPECT_EQ(s.steps, 28);  // FluxKontextPipeline's defaults
  EXPECT_EQ(s.guidance, 3.5f);
  EXPECT_EQ(s.strength, 1.0);
  EXPECT_EQ(s.width, 1184);  // the 64x48 reference's Kontext resolution
  EXPECT_EQ(s.height, 880);
}

// The same transformer in a plain FluxPipeline folder is FLUX.1 dev; schnell (no guidance input,
// unlike Kontext) takes no reference.
TEST_F(FluxKontextGolden, TheFoldersPipelineClassNamesIt) {
  FluxFiles files = kontext_files();
  files.model_dir = test::flux_tiny_dev();
  files.diffusion_model.clear();
  EXPECT_EQ(FluxPipeline::load(files).variant(), FluxVariant::Dev);
  files.model_dir = test::fixture("flux_pipeline") / "tiny_schnell";
  const FluxPipeline schnell = FluxPipeline::load(files);
  ASSERT_EQ(schnell.variant(), FluxVariant::Schnell);
  EXPECT_THROW(schnell.resolve(golden().request("kontext")), Error);
}

// A lone Kontext transformer has dev's shape: its name (the release's
// "flux1-kontext-dev.safetensors") tells, as ComfyUI users load it. (The tiny one is a folder with
// its config.json: its shapes do not give its rope axes.)
TEST_F(FluxKontextGolden, ALoneTransformerIsKnownByItsName) {
  const fs::path dir = fs::temp_directory_path() / "zflow_kontext_name_test";
  fs::remove_all(dir);
  const auto transformer_named = [&](const std::string& name) {
    const fs::path folder = dir / name;
    fs::create_directories(folder);
    for (const char* file : {"config.json", "diffusion_pytorch_model.safetensors"})
      fs::create_symlink(fs::absolute(test::flux_tiny_dev() / "transformer" / file), folder / file);
    FluxFiles files = kontext_files();
    files.model_dir.clear();
    files.diffusion_model = folder;
    return FluxPipeline::load(files).variant();
  };
  EXPECT_EQ(transformer_named("FLUX.1-Kontext-dev"), FluxVariant::KontextDev);
  EXPECT_EQ(transformer_named("flux1-dev"), FluxVariant::Dev);
  fs::remove_all(dir);
}

TEST_F(FluxKontextGolden, RefusesWhatItCannotEdit) {
  const FluxPipeline& pipe = golden().pipeline();
  FluxRequest with_init = golden().request("kontext");
  with_init.init_image = with_init.references.front();
  EXPECT_THROW(pipe.resolve(with_init), Error);
  FluxRequest with_strength = golden().request("kontext");
  with_strength.strength = 0.5;
  EXPECT_THROW(pipe.resolve(with_strength), Error);
  FluxRequest tiny_reference = golden().request("kontext");
  tiny_reference.references = {io::Image{15, 40, std::vector<uint8_t>(15 * 40 * 3, 128)}};
  EXPECT_THROW(pipe.resolve(tiny_reference), Error);
}

// Kontext resolutions from first principles: the sides rounded down to 16 give the aspect ratio,
// and the listed resolution with the nearest ratio wins.
TEST(KontextResolution, NearestListedAspect) {
  using Size = std::pair<int, int>;
  EXPECT_EQ(kontext_resolution(1024, 1024, 16), Size(1024, 1024));
  EXPECT_EQ(kontext_resolution(64, 48, 16), Size(1184, 880));      // 4:3 = 1.333; 1184/880 = 1.345
  EXPECT_EQ(kontext_resolution(36, 52, 16), Size(832, 1248));      // 32x48 = 2:3 exactly
  EXPECT_EQ(kontext_resolution(1920, 1080, 16), Size(1392, 752));  // 1920x1072 = 1.791; 1.851
  EXPECT_EQ(kontext_resolution(4000, 500, 16), Size(1568, 672));   // wider than any: the widest
  EXPECT_EQ(kontext_resolution(500, 4000, 16), Size(672, 1568));
  EXPECT_THROW(kontext_resolution(15, 100, 16), Error);
  EXPECT_THROW(kontext_resolution(100, 0, 16), Error);
}

}  // namespace
}  // namespace zflow::pipeline
