// FLUX.1 with a ControlNet against diffusers 0.42.1's FluxControlNetPipeline,
// FluxControlNetImg2ImgPipeline and FluxControlNetInpaintPipeline on tiny random models
// (tools/golden/make_flux_controlnet_pipeline.py): tiny_dev with a Union ControlNet (InstantX /
// Shakker style: the control image's VAE latents, 3 modes) and an XLabs one (the pixels through
// its hint block). Cases: Union mode 2 at scale 0.7; a batch of two under true CFG, the control
// image resized, the ControlNet off for the first of 3 steps; XLabs off for the last step; Union
// img2img; two controls for the Union ControlNet; XLabs inpaint. Each output must match diffusers'
// uint8 image with PSNR >= 60 dB (measured 80-88 dB, and identical; a fixture made on another CPU
// moves a few pixels by one level, 77-80 dB): above test_flux_pipeline.cpp's 40 dB because the
// likeliest mistake, a wrong Union mode, measured 47 dB on this tiny model (the mode is one of 17
// text tokens; the Union cases keep 16 T5 tokens so that it shows at all). The ControlNets'
// zero-initialised layers carry a gain, so leaving the control out (20 dB), a wrong window (27 dB)
// or a black control image (33 dB) fall far below it (checked below).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "core/error.h"
#include "flux_golden.h"
#include "io/image.h"
#include "pipeline/flux_controlnet_input.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux_controlnet_pipeline");
constexpr double kMinPsnr = 60.0;
constexpr const char* kCases = "flux_controlnet_tiny_diffusers_cases.json";

FluxFiles files_with(const char* controlnet) {
  return {.model_dir = test::flux_tiny_dev(),
          .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
          .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5"),
          .controlnets = {kDir / controlnet}};
}

const test::FluxGolden& union_golden() {
  static const test::FluxGolden g(kDir, kCases, files_with("union"));
  return g;
}
const test::FluxGolden& xlabs_golden() {
  static const test::FluxGolden g(kDir, kCases, files_with("xlabs"));
  return g;
}

class FluxControlNetGolden : public test::FluxTokenizersTest {};

TEST_F(FluxControlNetGolden, UnionModeAndScale) {
  union_golden().check("union", kMinPsnr);
}
TEST_F(FluxControlNetGolden, UnionTrueCfgBatchWithAStartAndAResizedControl) {
  union_golden().check("union_true_cfg_batch2_window", kMinPsnr);
}
TEST_F(FluxControlNetGolden, XLabsPixelsWithAnEnd) {
  xlabs_golden().check("xlabs", kMinPsnr);
}
TEST_F(FluxControlNetGolden, UnionImg2Img) {
  union_golden().check("union_img2img", kMinPsnr);
}
TEST_F(FluxControlNetGolden, XLabsInpaint) {
  xlabs_golden().check("xlabs_inpaint", kMinPsnr);
}

// Two controls for the Union ControlNet, as FluxMultiControlNetModel around it: their samples add
// up, each with its mode, scale and window. Either alone misses.
TEST_F(FluxControlNetGolden, UnionTwoControls) {
  union_golden().check("union_two_controls", kMinPsnr);
  for (size_t dropped : {0u, 1u}) {
    FluxRequest one = union_golden().request("union_two_controls");
    one.controls.erase(one.controls.begin() + static_cast<std::ptrdiff_t>(dropped));
    EXPECT_LT(union_golden().psnr_against("union_two_controls", one,
                                          dropped == 0 ? "the second alone" : "the first alone"),
              kMinPsnr);
  }
}

// Two ControlNets side by side, one control image each (FluxMultiControlNetModel([union, plain])):
// their samples add up; control k goes to ControlNet k, so their order matters.
TEST_F(FluxControlNetGolden, TwoControlNetsSideBySide) {
  FluxFiles files = files_with("union");
  files.controlnets.push_back(kDir / "plain");
  const test::FluxGolden g(kDir, kCases, files);
  g.check("union_plain_side_by_side", kMinPsnr);
  FluxRequest one = g.request("union_plain_side_by_side");
  one.controls.pop_back();
  EXPECT_NE(test::error_of([&] { g.pipeline().resolve(one); }).find("give 2, got 1"),
            std::string::npos);
  // XLabs' pixels cannot run beside Union's latents.
  files.controlnets.back() = kDir / "xlabs";
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(files); }).find("cannot run beside"),
            std::string::npos);
}

// Each input of the ControlNet shows in the image.
TEST_F(FluxControlNetGolden, TheControlMatters) {
  const test::FluxGolden& g = union_golden();
  FluxRequest off = g.request("union");
  off.controls[0].scale = 0.0f;
  EXPECT_LT(g.psnr_against("union", off, "control strength 0"), kMinPsnr);
  FluxRequest mode = g.request("union");
  mode.controls[0].mode = 0;
  EXPECT_LT(g.psnr_against("union", mode, "another mode"), kMinPsnr);
  FluxRequest always = g.request("union_true_cfg_batch2_window");
  always.controls[0].start.reset();
  EXPECT_LT(g.psnr_against("union_true_cfg_batch2_window", always, "no start"), kMinPsnr);
  FluxRequest black = xlabs_golden().request("xlabs");
  black.controls[0].image.rgb.assign(black.controls[0].image.rgb.size(), 0);
  EXPECT_LT(xlabs_golden().psnr_against("xlabs", black, "black control image"), kMinPsnr);
}

TEST_F(FluxControlNetGolden, SettingsAndErrors) {
  const FluxPipeline& pipe = union_golden().pipeline();
  ASSERT_EQ(pipe.controlnets().size(), 1u);
  FluxRequest r = union_golden().request("union");
  r.controls[0].scale.reset();
  const FluxSettings s = pipe.resolve(r);
  EXPECT_EQ(s.mode, FluxMode::Control);
  EXPECT_TRUE(s.controlnet);
  ASSERT_EQ(s.controls.size(), 1u);
  EXPECT_EQ(s.controls[0].scale, 1.0f);  // diffusers' controlnet_conditioning_scale
  EXPECT_EQ(s.controls[0].start, 0.0);
  EXPECT_EQ(s.controls[0].end, 1.0);
  auto error = [&](const std::function<void(FluxRequest&)>& change) {
    FluxRequest bad = union_golden().request("union");
    change(bad);
    return test::error_of([&] { pipe.resolve(bad); });
  };
  EXPECT_NE(error([](FluxRequest& b) { b.controls.clear(); }).find("--control-image"),
            std::string::npos);
  EXPECT_NE(error([](FluxRequest& b) { b.controls[0].mode.reset(); }).find("depth 2"),
            std::string::npos);
  EXPECT_NE(error([](FluxRequest& b) { b.controls[0].mode = 3; }).find("0..2"), std::string::npos);
  EXPECT_NE(error([](FluxRequest& b) {
              b.controls[0].start = 0.5;
              b.controls[0].end = 0.5;
            }).find("start < end"),
            std::string::npos);
  FluxRequest xr = xlabs_golden().request("xlabs");
  xr.controls[0].mode = 1;
  EXPECT_NE(test::error_of([&] { xlabs_golden().pipeline().resolve(xr); }).find("no modes"),
            std::string::npos);
}

TEST(FluxControlNetInput, ScheduleWindowAndModes) {
  // diffusers' controlnet_keep: 1 - (i / N < start or (i + 1) / N > end).
  EXPECT_FALSE(flux_controlnet_acts(0, 3, 0.3, 1.0));
  EXPECT_TRUE(flux_controlnet_acts(1, 3, 0.3, 1.0));
  EXPECT_FALSE(flux_controlnet_acts(1, 3, 0.34, 1.0));  // 1 / 3 < 0.34
  EXPECT_TRUE(flux_controlnet_acts(1, 3, 0.0, 0.7));
  EXPECT_FALSE(flux_controlnet_acts(2, 3, 0.0, 0.7));
  EXPECT_TRUE(flux_controlnet_acts(3, 4, 0.0, 1.0));
  EXPECT_EQ(flux_union_mode("canny"), 0);
  EXPECT_EQ(flux_union_mode("depth"), 2);
  EXPECT_EQ(flux_union_mode("lq"), 6);
  EXPECT_EQ(flux_union_mode("9"), 9);
  EXPECT_EQ(flux_union_mode("-1"), std::nullopt);
  EXPECT_EQ(flux_union_mode("scribble"), std::nullopt);
  EXPECT_EQ(flux_union_mode("2x"), std::nullopt);
}

// schnell has no guidance input, but a ControlNet with a guidance embedder reads the request's
// guidance (dev's 3.5 by default), as diffusers passes guidance_scale to it: another guidance
// makes another image.
TEST_F(FluxControlNetGolden, SchnellGivesItsControlNetGuidance) {
  FluxFiles files = test::flux_files_beside_tiny_dev(test::fixture("flux_pipeline/tiny_schnell"));
  files.controlnets = {kDir / "union"};
  const FluxPipeline schnell = FluxPipeline::load(files);
  ASSERT_EQ(schnell.variant(), FluxVariant::Schnell);
  FluxRequest r = union_golden().request("union");
  r.guidance.reset();
  r.steps = 2;
  EXPECT_EQ(schnell.resolve(r).guidance, 3.5f);
  const io::Image a = schnell.generate(r).front();
  r.guidance = 9.0f;
  EXPECT_EQ(schnell.resolve(r).guidance, 9.0f);
  const double db = test::psnr(schnell.generate(r).front(), a);
  std::printf("  schnell, ControlNet guidance 9 against 3.5: PSNR %.1f dB\n", db);
  EXPECT_LT(db, 60.0);
}

// A saved FluxControlNetPipeline folder brings its controlnet/ along.
TEST_F(FluxControlNetGolden, PipelineFolderWithItsControlNet) {
  const fs::path dir =
      fs::temp_directory_path() / ("zflow_cn_pipeline_" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const char* sub : {"transformer", "text_encoder", "text_encoder_2", "vae", "scheduler"})
    fs::create_directory_symlink(test::flux_tiny_dev() / sub, dir / sub);
  fs::create_directory_symlink(kDir / "union", dir / "controlnet");
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "FluxControlNetPipeline"})";
  const FluxPipeline pipe =
      FluxPipeline::load({.model_dir = dir,
                          .clip_tokenizer = test::flux1_tokenizer("tokenizer_clip_l"),
                          .t5_tokenizer = test::flux1_tokenizer("tokenizer_t5")});
  ASSERT_EQ(pipe.controlnets().size(), 1u);
  EXPECT_EQ(pipe.controlnets().front()->config().num_mode, 3);
  fs::remove_all(dir);
}

// ControlNets steer dev and schnell: another family's, or a misfit, is named.
TEST_F(FluxControlNetGolden, RefusesMisfits) {
  FluxFiles files = files_with("union");
  // inner 32, text 24: not tiny_dev's
  files.controlnets = {test::fixture("flux_controlnet") / "union"};
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(files); }).find("does not fit"),
            std::string::npos);
  FluxFiles fill = test::flux_files_beside_tiny_dev(test::fixture("flux_fill_pipeline/tiny_fill"));
  fill.controlnets = {kDir / "union"};
  EXPECT_NE(test::error_of([&] { FluxPipeline::load(fill); }).find("steer dev or schnell"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
