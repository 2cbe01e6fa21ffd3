// The hires fix through the generator every caller uses, against diffusers' ZImagePipeline,
// Pillow's resize and ZImageImg2ImgPipeline chained as A1111 chains its passes
// (tools/golden/make_hires_fix.py): a 2x Lanczos upscale without CFG, and a batch of two with CFG,
// nearest upscaling, their own second-pass steps and a size given outright, each image repainted
// with seed + k; and an ESRGAN upscaler (spandrel's network, then Lanczos to the hires size). 40 dB
// on the 8-bit output, as every pipeline golden; repainting image 1 with the batch's own seed
// instead lands far below it (checked).
#include <gtest/gtest.h>

#include <cstdio>

#include "flux_golden.h"
#include "golden_cases.h"
#include "hires_golden.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/generator.h"
#include "pipeline/hires_fix.h"
#include "pipeline/upscale.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("hires_fix");
constexpr double kMinPsnr = 40.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "hires_fix_cases.json");
  return c;
}

const ImageGenerator& generator() {
  static const std::unique_ptr<ImageGenerator> g =
      load_generator({.model_dir = test::fixture("zimage_pipeline") / "tiny",
                      .tokenizer = test::shared_asset("qwen3_tokenizer")});
  return *g;
}

GenerationRequest request_for(const nlohmann::json& c,
                              NormalMath normal_math = cases().normal_math()) {
  return test::hires_case_request(c, normal_math);
}

TEST(HiresFixGolden, Lanczos2xMatchesDiffusersChained) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find("turbo_2x");
  GenerationRequest r = request_for(c);
  r.hires->width = r.hires->height = 0;  // the default scale 2 gives the case's 64x64
  test::expect_images_match(generator().generate(r, {}), c["expected"], kDir, kMinPsnr, "2x");
}

TEST(HiresFixGolden, BatchRepaintsEachImageWithItsOwnSeed) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find("cfg_batch2_nearest");
  const GenerationRequest r = request_for(c);
  std::vector<int> steps;
  RunControl control;
  control.on_step = [&](const StepProgress& p) {
    steps.push_back(p.step);
    EXPECT_EQ(p.steps, 4 + 3) << "4 first steps, then 6 * 0.5 for both images in one run";
  };
  const std::vector<io::Image> images = generator().generate(r, control);
  test::expect_images_match(images, c["expected"], kDir, kMinPsnr, "batch");
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 5, 6, 7}));

  const io::Image upscaled = io::read_image(kDir / "hires_fix_cfg_batch2_nearest_upscaled_1.png");
  GenerationRequest same_seed;
  same_seed.prompt = r.prompt;
  same_seed.negative_prompt = r.negative_prompt;
  same_seed.cfg_scale = r.cfg_scale;
  same_seed.steps = r.hires->steps;
  same_seed.strength = r.hires->strength;
  same_seed.init_image = upscaled;
  same_seed.seed = r.seed;
  same_seed.normal_math = r.normal_math;
  const double db = test::psnr(generator().generate(same_seed, {}).front(), images[1]);
  std::printf("  image 1 repainted with the batch's seed: PSNR %.1f dB\n", db);
  EXPECT_LT(db, kMinPsnr);

  const GenerationSettings s = generator().resolve(r);
  EXPECT_EQ(s.width, 80);
  EXPECT_EQ(s.height, 48);
  EXPECT_EQ(s.steps_run, 7);
  EXPECT_EQ(s.mode, "txt2img + hires fix");
  const ImageRecord record = generator().record(r, {}, 1);
  EXPECT_NE(record.parameters.find("Size: 48x32"), std::string::npos) << record.parameters;
  EXPECT_NE(record.parameters.find(", Denoising strength: 0.5, Hires resize: 80x48, Hires steps: "
                                   "6, Hires upscaler: Nearest"),
            std::string::npos)
      << record.parameters;
  EXPECT_EQ(record.request["hires"]["seed"], 8);
}

TEST(HiresFixGolden, EsrganUpscalerThenLanczosMatchesTheChainedReference) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find("turbo_esrgan");
  const GenerationRequest r = request_for(c);
  // The upscaled picture itself: spandrel's output rounded, then Pillow's Lanczos, so all but
  // pixels a rounding boundary away agree.
  const io::Image draft = io::read_image(kDir / "hires_fix_turbo_esrgan_draft_0.png");
  const io::Image upscaled = io::read_image(kDir / "hires_fix_turbo_esrgan_upscaled_0.png");
  EXPECT_GE(test::psnr(upscale_image_to(*r.hires->upscale_model, draft, 64, 48), upscaled),
            kMinPsnr);
  // Lanczos alone makes another picture.
  EXPECT_LT(test::psnr(io::resize_image(draft, 64, 48, io::ResampleFilter::Lanczos), upscaled),
            20.0);
  test::expect_images_match(generator().generate(r, {}), c["expected"], kDir, kMinPsnr, "esrgan");
  const ImageRecord record = generator().record(r, {}, 0);
  EXPECT_NE(record.parameters.find("Hires upscaler: tiny-esrgan"), std::string::npos)
      << record.parameters;
}

// A1111's latent upscalers (tools/golden/make_latent_hires_fix.py): the first pass's latents,
// resized by torch's interpolate, start the second pass without a VAE round trip. Z-Image with
// "Latent" (bilinear) and a CFG batch of two with "Latent (bicubic antialiased)" and its own
// second-pass steps; FLUX.1-dev with "Latent (nearest-exact)". 40 dB on the 8-bit output. The same
// run through a Lanczos upscale of the picture lands far below it.
TEST(HiresFixGolden, LatentUpscalersMatchDiffusersChained) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  ZF_REQUIRE_ASSET(test::shared_asset("flux1_tokenizer/tokenizer_t5/spiece.model"));
  const fs::path dir = test::fixture("latent_hires_fix");
  const test::GoldenCases latent_cases(dir / "latent_hires_fix_cases.json");
  const std::unique_ptr<ImageGenerator> flux =
      load_generator({.model_dir = test::flux_tiny_dev(),
                      .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                      .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
  for (const char* name : {"zimage_latent", "zimage_bicubic_aa_batch2", "flux_nearest_exact"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& c = latent_cases.find(name);
    const bool is_flux = c["family"] == "flux";
    const GenerationRequest r = request_for(c, latent_cases.normal_math());
    ASSERT_TRUE(r.hires->latent_upscaler);
    const ImageGenerator& g = is_flux ? *flux : generator();
    const std::vector<io::Image> images = g.generate(r, {});
    test::expect_images_match(images, c["expected"], dir, kMinPsnr, name);
    const ImageRecord record = g.record(r, {}, 0);
    EXPECT_NE(record.parameters.find("Hires upscaler: " + c["upscaler"].get<std::string>()),
              std::string::npos)
        << record.parameters;
    if (!is_flux) continue;
    GenerationRequest pixels = r;
    pixels.hires->latent_upscaler.reset();
    const double db = test::psnr(g.generate(pixels, {}).front(), images.front());
    std::printf("  through a Lanczos upscale of the picture instead: PSNR %.1f dB\n", db);
    EXPECT_LT(db, kMinPsnr);
  }
}

// FLUX.2 cannot hand its latents over: a latent upscaler asked for is refused before anything
// runs; one that was only A1111's default gives way to Lanczos.
TEST(HiresFix, LatentUpscalerNeedsAFamilyWithLatents) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const std::unique_ptr<ImageGenerator> klein =
      load_generator({.model_dir = test::fixture("flux2_pipeline") / "tiny_klein",
                      .tokenizer = test::shared_asset("qwen3_tokenizer")});
  GenerationRequest r;
  r.prompt = "a fox";
  r.width = r.height = 32;
  r.steps = 2;
  HiresFix h;
  h.latent_upscaler = LatentUpscale::Bilinear;
  r.hires = h;
  EXPECT_NE(test::error_of([&] { klein->resolve(r); }).find("Latent resizes latents, which"),
            std::string::npos);
  r.hires->latent_by_default = true;
  EXPECT_EQ(klein->resolve(r).width, 64);
  EXPECT_NE(klein->record(r, {}, 0).parameters.find("Hires upscaler: Lanczos"), std::string::npos);
  EXPECT_EQ(klein->generate(r, {}).front().width, 64);
}

// A1111's sizes: the scale rounded down to whole tokens, or one side given and the other kept in
// proportion (hr_resize_y = hr_resize_x * height // width), then rounded down.
TEST(HiresFix, SizesAreA1111sInWholeTokens) {
  HiresFix h;
  h.scale = 1.5;
  EXPECT_EQ(hires_size(h, 1000, 600), (std::pair{1488, 896}));
  h.width = 1024;
  EXPECT_EQ(hires_size(h, 1000, 600), (std::pair{1024, 608}));  // 614 rounded down
  h = {};
  h.height = 2048;
  EXPECT_EQ(hires_size(h, 1024, 512), (std::pair{4096, 2048}));
  h = {};
  h.scale = 0.01;
  EXPECT_NE(test::error_of([&] { hires_size(h, 512, 512); }).find("under one 16-pixel token"),
            std::string::npos);
}

// With a ControlNet the control image steers both passes: FLUX.1-dev's tiny pipeline with its
// Union ControlNet against diffusers' FluxControlNetPipeline, Pillow and
// FluxControlNetImg2ImgPipeline chained (make_hires_fix_controlnet.py), a batch of two. The second
// pass with the control at strength 0 lands far below the threshold.
class HiresFixControlNet : public test::FluxTokenizersTest {};

TEST_F(HiresFixControlNet, SecondPassKeepsTheControlAsDiffusersChained) {
  const fs::path dir = test::fixture("hires_fix_controlnet");
  const test::GoldenCases flux_cases(dir / "hires_fix_controlnet_cases.json");
  const nlohmann::json& c = flux_cases.find("union_batch2");
  const std::unique_ptr<ImageGenerator> g =
      load_generator({.model_dir = test::flux_tiny_dev(),
                      .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                      .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5"),
                      .controlnets = {test::fixture("flux_controlnet_pipeline") / "union"}});
  GenerationRequest r;
  r.prompt = c["prompt"];
  r.width = c["width"].get<int>();
  r.height = c["height"].get<int>();
  r.steps = c["steps"].get<int>();
  r.guidance = c["guidance"].get<float>();
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c["num_images"].get<int>();
  r.max_sequence_length = c["max_sequence_length"].get<size_t>();
  r.normal_math = flux_cases.normal_math();
  r.controls = {ControlInput{.image = io::read_image(dir / c["control_image"].get<std::string>()),
                             .scale = c["scale"].get<float>(),
                             .mode = c["mode"].get<int>()}};
  HiresFix h;
  h.width = c["hires_width"].get<int>();
  h.height = c["hires_height"].get<int>();
  h.strength = c["hires_strength"].get<double>();
  r.hires = h;
  const std::vector<io::Image> images = g->generate(r, {});
  ASSERT_EQ(images.size(), 2u);
  for (size_t k = 0; k < images.size(); ++k) {
    const double psnr =
        test::psnr(images[k], io::read_image(dir / c["expected"][k].get<std::string>()));
    std::printf("  image %zu with the control in both passes: PSNR %.1f dB\n", k, psnr);
    EXPECT_GE(psnr, kMinPsnr) << "image " << k;
  }
  // The second pass of image 0 alone, from the reference's upscaled picture, with the control off.
  GenerationRequest second = r;
  second.hires.reset();
  second.batch = 1;
  second.width = h.width;
  second.height = h.height;
  second.init_image = io::read_image(dir / "hires_fix_controlnet_union_batch2_upscaled_0.png");
  second.strength = h.strength;
  second.controls[0].scale = 0.0f;
  const double without = test::psnr(g->generate(second, {}).front(),
                                    io::read_image(dir / c["expected"][0].get<std::string>()));
  std::printf("  image 0 without the control in its second pass: PSNR %.1f dB\n", without);
  EXPECT_LT(without, kMinPsnr);
}

TEST(HiresFixGolden, RefusalsNameWhatIsWrong) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  GenerationRequest r = request_for(cases().find("turbo_2x"));
  r.init_image = io::read_image(kDir / "hires_fix_turbo_2x_draft_0.png");
  EXPECT_NE(test::error_of([&] { generator().resolve(r); }).find("follows text-to-image"),
            std::string::npos);
  r.init_image.reset();
  r.hires->strength = 0.0;
  EXPECT_NE(test::error_of([&] { generator().resolve(r); }).find("strength must be in (0, 1]"),
            std::string::npos);
  EXPECT_FALSE(generator().can_share_forwards(request_for(cases().find("turbo_2x")),
                                              request_for(cases().find("turbo_2x"))));
}

}  // namespace
}  // namespace zflow::pipeline
