// `zflow generate` end to end: the built binary on the tiny Z-Image fixture must write the same
// images as diffusers (batch with %d numbering; inpaint from files), PNG text chunks with the
// A1111 `parameters` and the request JSON, and one-line errors for a bad model folder.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "io/image.h"
#include "io/safetensors.h"
#include "io/weight_store.h"
#include "pipeline/flux_golden.h"
#include "pipeline/image_psnr.h"
#include "pipeline/masked_content.h"
#include "pipeline/outpaint.h"
#include "pipeline/upscale.h"
#include "test_util.h"

namespace zflow {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("zimage_pipeline");
const char* kPrompt = "a red fox sitting in fresh snow, morning light";

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr
};

// A shell command's exit status and output.
CommandResult run_command(const std::string& cmd) {
  FILE* pipe = popen(cmd.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  CommandResult r{-1, ""};
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int raw = pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

CommandResult run_zflow(const std::string& args) {
  return run_command(std::string(ZFLOW_BINARY) + " " + args + " 2>&1");
}

// tEXt and iTXt chunks of a PNG file, keyword -> text (PNG spec 11.3.4).
std::map<std::string, std::string> png_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  std::map<std::string, std::string> out;
  size_t at = 8;  // after the signature
  while (at + 12 <= bytes.size()) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data() + at);
    const size_t len = (size_t(p[0]) << 24) | (size_t(p[1]) << 16) | (size_t(p[2]) << 8) | p[3];
    const std::string type = bytes.substr(at + 4, 4);
    const std::string data = bytes.substr(at + 8, len);
    const size_t nul = data.find('\0');
    if (type == "tEXt") out[data.substr(0, nul)] = data.substr(nul + 1);
    if (type == "iTXt") {  // keyword\0 flag method lang\0 translated\0 text (uncompressed here)
      const size_t lang_end = data.find('\0', nul + 3);
      const size_t trans_end = data.find('\0', lang_end + 1);
      out[data.substr(0, nul)] = data.substr(trans_end + 1);
    }
    at += 12 + len;
  }
  return out;
}

// `generate` with the FLUX.1 folder `model_dir` and tiny_dev's text encoders, VAE and the real
// tokenizers as separate files (stable-diffusion.cpp's flags). Skips without the tokenizers.
#define ZF_REQUIRE_FLUX1_TOKENIZERS()                          \
  ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_clip_l")); \
  ZF_REQUIRE_ASSET(test::flux1_tokenizer("tokenizer_t5"))
std::string flux_generate_beside_tiny_dev(const fs::path& model_dir) {
  const fs::path dev = test::flux_tiny_dev();
  return "generate --device cpu -m " + model_dir.string() + " --clip-l " +
         (dev / "text_encoder").string() + " --t5xxl " + (dev / "text_encoder_2").string() +
         " --vae " + (dev / "vae").string() + " --clip-tokenizer " +
         test::flux1_tokenizer("tokenizer_clip_l").string() + " --t5-tokenizer " +
         test::flux1_tokenizer("tokenizer_t5").string();
}

class GenerateCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = test::shared_asset("qwen3_tokenizer");
    if (!fs::exists(tokenizer_ / "tokenizer.json"))
      GTEST_SKIP() << "shared asset " << tokenizer_ << " is absent (see ../shared/assets)";
    out_ = fs::temp_directory_path() / ("zflow_generate_test_" + std::to_string(getpid()));
    fs::create_directories(out_);
  }
  void TearDown() override {
    if (!out_.empty()) fs::remove_all(out_);
  }
  std::string model_args() const {
    return "generate --device cpu -m " + (kDir / "tiny").string() + " --tokenizer " +
           tokenizer_.string();
  }
  fs::path tokenizer_, out_;
};

TEST_F(GenerateCommand, BatchMatchesDiffusersAndCarriesMetadata) {
  // The golden case "batch2": CFG g = 3 with an empty negative prompt, 32x48, 2 steps, seed 11.
  const CommandResult r =
      run_zflow(model_args() + " -p '" + kPrompt +
                "' -n '' -W 32 -H 48 --steps 2 --cfg-scale 3 -b 2 --seed 11 -o " +
                (out_ / "fox_%d.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("seed 11"), std::string::npos) << r.output;
  for (int k = 0; k < 2; ++k) {
    const fs::path path = out_ / ("fox_" + std::to_string(k) + ".png");
    ASSERT_TRUE(fs::exists(path)) << r.output;
    const io::Image want =
        io::read_image(kDir / ("zimage_tiny_diffusers_batch2_" + std::to_string(k) + ".png"));
    EXPECT_GE(test::psnr(io::read_image(path), want), 40.0) << path;  // as test_zimage_pipeline.cpp

    const auto text = png_text(path);
    ASSERT_TRUE(text.count("parameters")) << path;
    EXPECT_EQ(text.at("parameters"),
              std::string(kPrompt) +
                  "\nSteps: 2, Sampler: Euler, CFG scale: 3, Seed: 11, Size: 32x48, Model: tiny, "
                  "Shift: 3, Batch size: 2, Batch pos: " +
                  std::to_string(k));
    ASSERT_TRUE(text.count("zflow_request")) << path;
    const auto j = nlohmann::json::parse(text.at("zflow_request"));
    EXPECT_EQ(j["prompt"], kPrompt);
    EXPECT_EQ(j["mode"], "txt2img");
    EXPECT_EQ(j["seed"], 11);
    EXPECT_EQ(j["steps"], 2);
    EXPECT_EQ(j["guidance"], 3.0);
    EXPECT_EQ(j["width"], 32);
    EXPECT_EQ(j["height"], 48);
    EXPECT_EQ(j["batch"], 2);
    EXPECT_EQ(j["batch_index"], k);
  }
}

// A file of prompts: prompt i gets seed + i, runs of up to --join images share forwards, and
// every image equals the one -p with that prompt and seed makes; images are numbered in order.
TEST_F(GenerateCommand, PromptsFileJoinsRunsAndMatchesSinglePrompts) {
  const fs::path prompts = out_ / "prompts.txt";
  std::ofstream(prompts) << "# products\n"
                         << kPrompt << "\n\n  a blue teapot on a wooden table  \r\n"
                         << "ein Leuchtturm im Nebel\n";
  const std::string common = " -W 32 -H 32 --steps 2 --seed 20 -b 2";
  const CommandResult r = run_zflow(model_args() + common + " --prompts " + prompts.string() +
                                    " --join 4 -o " + (out_ / "p.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("prompts 1-2 of 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("prompts 3-3 of 3"), std::string::npos) << r.output;
  const std::vector<std::string> texts = {kPrompt, "a blue teapot on a wooden table",
                                          "ein Leuchtturm im Nebel"};
  for (size_t i = 0; i < texts.size(); ++i) {
    const fs::path alone = out_ / ("alone_" + std::to_string(i) + "_%d.png");
    const CommandResult single =
        run_zflow(model_args() + " -W 32 -H 32 --steps 2 -b 2 --seed " + std::to_string(20 + i) +
                  " -p '" + texts[i] + "' -o " + alone.string());
    ASSERT_EQ(single.status, 0) << single.output;
    for (int k = 0; k < 2; ++k) {
      const fs::path joined = out_ / ("p_" + std::to_string(2 * i + k) + ".png");
      const fs::path own = out_ / ("alone_" + std::to_string(i) + "_" + std::to_string(k) + ".png");
      ASSERT_TRUE(fs::exists(joined)) << r.output;
      EXPECT_EQ(io::read_image(joined).rgb, io::read_image(own).rgb) << joined;
      const auto j = nlohmann::json::parse(png_text(joined).at("zflow_request"));
      EXPECT_EQ(j["prompt"], texts[i]);
      EXPECT_EQ(j["seed"], 20 + i);
      EXPECT_EQ(j["batch_index"], k);
    }
  }
  EXPECT_NE(run_zflow(model_args() + " -p x --prompts " + prompts.string()).status, 0);
  const fs::path empty = out_ / "empty.txt";
  std::ofstream(empty) << "# nothing\n\n";
  const CommandResult none = run_zflow(model_args() + " --prompts " + empty.string());
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.output.find("no prompts"), std::string::npos) << none.output;
}

TEST_F(GenerateCommand, InpaintFromFilesMatchesDiffusers) {
  // The golden case "inpaint_strength": g 4 with a negative prompt, strength 0.7, 4 steps.
  const fs::path out = out_ / "inpaint.png";
  const CommandResult r =
      run_zflow(model_args() + " -p '" + kPrompt +
                "' -n 'blurry, low quality' --steps 4 --cfg-scale 4 --strength 0.7 --seed 10 "
                "-i " +
                (kDir / "zimage_tiny_diffusers_init.png").string() + " --mask " +
                (kDir / "zimage_tiny_diffusers_mask.png").string() + " -o " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  const io::Image want = io::read_image(kDir / "zimage_tiny_diffusers_inpaint_strength_0.png");
  EXPECT_GE(test::psnr(io::read_image(out), want), 40.0);
  const auto text = png_text(out);
  EXPECT_NE(text.at("parameters").find("\nNegative prompt: blurry, low quality\n"),
            std::string::npos);
  EXPECT_NE(text.at("parameters").find("Denoising strength: 0.7"), std::string::npos);
  const auto j = nlohmann::json::parse(text.at("zflow_request"));
  EXPECT_EQ(j["mode"], "inpaint");
  EXPECT_EQ(j["strength"], 0.7);
}

// --masked-content fill inpaints the picture A1111's fill makes (pipeline/masked_content.h), as
// if that picture were the -i file; it needs a mask.
TEST_F(GenerateCommand, MaskedContentFillsTheMaskedArea) {
  const std::string init = (kDir / "zimage_tiny_diffusers_init.png").string();
  const std::string mask = (kDir / "zimage_tiny_diffusers_mask.png").string();
  const std::string args =
      model_args() + " -p '" + kPrompt + "' --steps 3 --strength 0.7 --seed 10 --mask " + mask;
  CommandResult r =
      run_zflow(args + " -i " + init + " --masked-content fill -o " + (out_ / "fill.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  io::write_png(out_ / "filled.png",
                pipeline::fill_masked_area(io::read_image(init), io::read_image(mask)));
  r = run_zflow(args + " -i " + (out_ / "filled.png").string() + " -o " +
                (out_ / "by_hand.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(io::read_image(out_ / "fill.png").rgb, io::read_image(out_ / "by_hand.png").rgb);
  EXPECT_NE(png_text(out_ / "fill.png").at("parameters").find(", Masked content: fill"),
            std::string::npos);

  r = run_zflow(model_args() + " -p x -i " + init + " --masked-content latent-noise -o " +
                (out_ / "x.png").string());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("--masked-content latent-noise needs --mask"), std::string::npos)
      << r.output;
}

// ControlNet inpainting from the command line: the golden case "v21_inpaint" of
// make_zimage_controlnet_pipeline.py (a tiny Union 2.1 file, control image, init image, mask).
TEST_F(GenerateCommand, ControlNetInpaintMatchesDiffusers) {
  const fs::path cn = test::fixture("zimage_controlnet_pipeline");
  const auto file = [&](const char* name) {
    return (cn / fmt::format("zimage_controlnet_pipeline_{}", name)).string();
  };
  const fs::path out = out_ / "controlnet.png";
  const CommandResult r = run_zflow(
      model_args() + " -p '" + kPrompt + "' --steps 3 --cfg-scale 0 --seed 24 --control-net " +
      file("tiny_v21.safetensors") + " --control-image " + file("control.png") +
      " --control-strength 1 -i " + file("init.png") + " --mask " + file("mask.png") + " -o " +
      out.string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out), io::read_image(file("v21_inpaint_0.png"))), 40.0);
  const auto j = nlohmann::json::parse(png_text(out).at("zflow_request"));
  EXPECT_EQ(j["mode"], "controlnet-inpaint");
  EXPECT_EQ(j["controlnet"], "zimage_controlnet_pipeline_tiny_v21");
  EXPECT_FALSE(j.contains("strength"));
  // Z-Image reads a control image only through a ControlNet.
  const CommandResult missing = run_zflow(model_args() + " -p x --control-image " +
                                          file("control.png") + " -o " + (out_ / "x.png").string());
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.output.find("a control image needs a ControlNet (--control-net FILE)"),
            std::string::npos)
      << missing.output;
}

// --outpaint is inpainting of the grown canvas (its construction: test_outpaint.cpp): the same
// pixels as -i CANVAS --mask MASK --strength 1, the canvas's size by default, and the margins on
// record.
TEST_F(GenerateCommand, OutpaintIsInpaintingTheCanvas) {
  const fs::path init = kDir / "zimage_tiny_diffusers_init.png";  // 64 x 48
  const std::string common = model_args() + " -p '" + kPrompt + "' --steps 2 --seed 5";
  const fs::path out = out_ / "outpaint.png";
  const CommandResult r =
      run_zflow(common + " -i " + init.string() + " --outpaint 16,0,8,8 -o " + out.string());
  ASSERT_EQ(r.status, 0) << r.output;

  const pipeline::OutpaintCanvas canvas =
      pipeline::outpaint_canvas(io::read_image(init), {16, 0, 8, 8});
  io::write_png(out_ / "canvas.png", canvas.image);
  io::write_png(out_ / "mask.png", canvas.mask);
  const fs::path by_hand = out_ / "by_hand.png";
  const CommandResult inpaint =
      run_zflow(common + " -i " + (out_ / "canvas.png").string() + " --mask " +
                (out_ / "mask.png").string() + " --strength 1 -o " + by_hand.string());
  ASSERT_EQ(inpaint.status, 0) << inpaint.output;
  const io::Image image = io::read_image(out);
  EXPECT_EQ(image.width, 96);  // 16 + 64 + 8 = 88, widened on the right to 6 tokens
  EXPECT_EQ(image.height, 64);
  EXPECT_EQ(image.rgb, io::read_image(by_hand).rgb);

  const auto j = nlohmann::json::parse(png_text(out).at("zflow_request"));
  EXPECT_EQ(j["mode"], "inpaint");
  EXPECT_EQ(j["mask"], "outpaint 16,0,16,16");
  EXPECT_EQ(j["strength"], 1.0);

  const CommandResult no_picture = run_zflow(common + " --outpaint 32 -o " + out.string());
  EXPECT_NE(no_picture.status, 0);
  EXPECT_NE(no_picture.output.find("--outpaint 32 needs -i PICTURE"), std::string::npos)
      << no_picture.output;
  const CommandResult bad =
      run_zflow(common + " -i " + init.string() + " --outpaint 1,2 -o " + out.string());
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--outpaint '1,2'"), std::string::npos) << bad.output;
}

TEST_F(GenerateCommand, CfgFlagsMatchDiffusers) {
  // The golden case "base_cfgnorm" (--cfg-normalization without a value means k = 1), and the
  // same with an explicit k that changes the image, recorded in the parameters.
  const std::string args = model_args() + " -p '" + kPrompt +
                           "' -n 'blurry, low quality' -W 32 -H 32 --steps 3 --cfg-scale 4 "
                           "--seed 7 -o ";
  const CommandResult r = run_zflow(args + (out_ / "a.png").string() + " --cfg-normalization");
  ASSERT_EQ(r.status, 0) << r.output;
  const io::Image want = io::read_image(kDir / "zimage_tiny_diffusers_base_cfgnorm_0.png");
  EXPECT_GE(test::psnr(io::read_image(out_ / "a.png"), want), 40.0);
  EXPECT_NE(png_text(out_ / "a.png").at("parameters").find("CFG normalization: 1,"),
            std::string::npos);
  const CommandResult k = run_zflow(args + (out_ / "b.png").string() + " --cfg-normalization=3");
  ASSERT_EQ(k.status, 0) << k.output;
  EXPECT_NE(png_text(out_ / "b.png").at("parameters").find("CFG normalization: 3,"),
            std::string::npos);
  EXPECT_LT(test::psnr(io::read_image(out_ / "b.png"), want), 40.0);  // k = 3 caps less
}

// --sampler and --scheduler reach the loop (the sampler golden "zimage_heun_karras_cfg", made by
// k-diffusion's Heun over diffusers' Karras sigmas) and the record; unknown names are one line
// listing zflow's.
TEST_F(GenerateCommand, SamplerFlagsMatchTheReferenceAndAreRecorded) {
  const auto args = [&](const char* file) {
    return model_args() + " -p '" + kPrompt +
           "' -n 'blurry, low quality' -W 48 -H 64 --steps 4 --cfg-scale 4 --cfg-truncation 0.8 "
           "--seed 7 -o " +
           (out_ / file).string();
  };
  const CommandResult r = run_zflow(args("heun.png") + " --sampler Heun --scheduler karras");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path golden = test::fixture("sampler_pipeline");
  const io::Image want = io::read_image(golden / "sampler_pipeline_zimage_heun_karras_cfg_0.png");
  EXPECT_GE(test::psnr(io::read_image(out_ / "heun.png"), want), 40.0);
  const auto text = png_text(out_ / "heun.png");
  EXPECT_NE(text.at("parameters").find("Sampler: Heun, Schedule type: Karras,"), std::string::npos)
      << text.at("parameters");
  const auto record = nlohmann::json::parse(text.at("zflow_request"));
  EXPECT_EQ(record.at("sampler"), "heun");
  EXPECT_EQ(record.at("scheduler"), "karras");

  // A stochastic sampler's noise comes from the seed: the same command makes the same picture.
  for (const char* name : {"a.png", "b.png"}) {
    const CommandResult again = run_zflow(args(name) + " --sampler euler_a");
    ASSERT_EQ(again.status, 0) << again.output;
  }
  EXPECT_EQ(test::psnr(io::read_image(out_ / "a.png"), io::read_image(out_ / "b.png")), INFINITY);
  EXPECT_LT(test::psnr(io::read_image(out_ / "a.png"), want), 40.0);  // not Heun's picture

  const CommandResult bad = run_zflow(args("x.png") + " --sampler ddim");
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output,
              ::testing::HasSubstr(
                  "--sampler ddim: unknown sampler; zflow has euler, heun, dpm++2m, res_multistep, "
                  "euler_a, lcm"));
  const CommandResult bad_schedule = run_zflow(args("x.png") + " --scheduler sgm_uniform");
  EXPECT_NE(bad_schedule.status, 0);
  EXPECT_THAT(bad_schedule.output,
              ::testing::HasSubstr("--scheduler sgm_uniform: unknown schedule"));
}

// --first-block-cache reaches the transformer (the golden "zimage_turbo" of
// make_first_block_cache.py, which skips 9 of its 16 steps' later layers) and the record.
TEST_F(GenerateCommand, FirstBlockCacheFlagMatchesDiffusersHooks) {
  const fs::path dir = test::fixture("first_block_cache");
  const CommandResult r = run_zflow(
      model_args() + " --diffusion-model " + (dir / "zimage_transformer").string() + " -p '" +
      kPrompt + "' -W 64 -H 48 --steps 16 --seed 42 --first-block-cache 0.65 -o " +
      (out_ / "cached.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("first-block cache: 9 of 16 forwards ran one"));
  const io::Image want = io::read_image(dir / "first_block_cache_zimage_turbo_0.png");
  EXPECT_GE(test::psnr(io::read_image(out_ / "cached.png"), want), 40.0);
  const auto text = png_text(out_ / "cached.png");
  EXPECT_NE(text.at("parameters").find(", First block cache: 0.65"), std::string::npos);
  EXPECT_FLOAT_EQ(nlohmann::json::parse(text.at("zflow_request")).at("first_block_cache"), 0.65f);
}

// --hires-scale runs the hires fix (the golden "turbo_2x" of make_hires_fix.py: diffusers'
// txt2img, Pillow's Lanczos 2x, img2img at 0.6) and records it as A1111 does.
TEST_F(GenerateCommand, HiresFlagsMatchTheChainedReference) {
  const CommandResult r = run_zflow(model_args() + " -p '" + kPrompt +
                                    "' -W 32 -H 32 --steps 4 --cfg-scale 0 --seed 42 "
                                    "--hires-scale 2 -o " +
                                    (out_ / "hires.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path dir = test::fixture("hires_fix");
  const io::Image got = io::read_image(out_ / "hires.png");
  EXPECT_EQ(got.width, 64);
  EXPECT_GE(test::psnr(got, io::read_image(dir / "hires_fix_turbo_2x_final_0.png")), 40.0);
  const auto text = png_text(out_ / "hires.png");
  EXPECT_NE(text.at("parameters").find("Size: 32x32"), std::string::npos);
  EXPECT_NE(text.at("parameters")
                .find(", Denoising strength: 0.6, Hires resize: 64x64, Hires upscaler: Lanczos"),
            std::string::npos)
      << text.at("parameters");
  // zflow info reads it back: the size, A1111's parameters, the request pretty-printed.
  const CommandResult info = run_zflow("info " + (out_ / "hires.png").string());
  ASSERT_EQ(info.status, 0) << info.output;
  EXPECT_THAT(info.output, ::testing::HasSubstr("hires.png: 64x64\nparameters:\n"));
  EXPECT_THAT(info.output, ::testing::HasSubstr("Hires resize: 64x64"));
  EXPECT_THAT(info.output, ::testing::HasSubstr("\n  \"sampler\": \"euler\",\n"));

  // A1111's latent upscalers by their names or written with dashes (test_hires_fix.cpp checks
  // their pictures).
  const CommandResult latent = run_zflow(model_args() + " -p x -W 32 -H 32 --steps 2 " +
                                         "--hires-scale 2 --hires-upscaler latent-bicubic -o " +
                                         (out_ / "latent.png").string());
  ASSERT_EQ(latent.status, 0) << latent.output;
  EXPECT_THAT(png_text(out_ / "latent.png").at("parameters"),
              ::testing::HasSubstr("Hires upscaler: Latent (bicubic)"));
}

// --dynamic-prompts makes every prompt a template stands for (text/dynamic_prompt.h checks the
// expansion against the extension's library), prompt i with seed + i as --prompts does: image 3
// is what -p with the fourth prompt and seed + 3 makes. --max-prompts cuts the list, saying so.
TEST_F(GenerateCommand, DynamicPromptsMakeEveryPromptOfTheTemplate) {
  const std::string common = model_args() + " -W 32 -H 32 --steps 2 ";
  const fs::path wildcards = test::fixture("dynamic_prompts/wildcards");
  const CommandResult r =
      run_zflow(common + "-p 'a {red|blue} fox __setting__' --wildcards " + wildcards.string() +
                " --seed 40 --max-prompts 4 -o " + (out_ / "fox_%d.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, ::testing::HasSubstr("more than 4 prompts; making the first 4"));
  EXPECT_FALSE(fs::exists(out_ / "fox_4.png"));
  const std::string parameters = png_text(out_ / "fox_3.png").at("parameters");
  EXPECT_THAT(parameters, ::testing::StartsWith("a blue fox in a sunlit kitchen\n"));
  EXPECT_THAT(parameters, ::testing::HasSubstr("Seed: 43,"));

  const CommandResult alone = run_zflow(
      common + "-p 'a blue fox in a sunlit kitchen' --seed 43 -o " + (out_ / "alone.png").string());
  ASSERT_EQ(alone.status, 0) << alone.output;
  EXPECT_EQ(io::read_image(out_ / "alone.png").rgb, io::read_image(out_ / "fox_3.png").rgb);

  const CommandResult bad = run_zflow(common + "-p 'a {red|blue fox' --dynamic-prompts");
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("the '{' at character 3 is never closed"));
}

// --random-prompts N draws N prompts from the template in the extension's random mode, prompt i
// and its request from seed + i, the negative prompt drawn as a template too: the picks are
// dynamicprompts' own for those seeds (random_prompts_cases.json, seeds 0 to 7 first).
TEST_F(GenerateCommand, RandomPromptsDrawEachPromptFromItsSeed) {
  std::ifstream in(test::fixture("dynamic_prompts/random_prompts_cases.json"));
  const nlohmann::json golden = nlohmann::json::parse(in);
  const nlohmann::json& positive = golden["cases"][1];
  const nlohmann::json& negative = golden["cases"][2];
  ASSERT_EQ(golden["seeds"][7], "7");
  const CommandResult r = run_zflow(
      model_args() + " -W 32 -H 32 --steps 2 --cfg-scale 2 -p '" +
      positive["template"].get<std::string>() + "' -n '" + negative["template"].get<std::string>() +
      "' --random-prompts 3 --seed 5 -o " + (out_ / "mug_%d.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(out_ / "mug_3.png"));
  for (int i = 0; i < 3; ++i) {
    const std::string parameters = png_text(out_ / fmt::format("mug_{}.png", i)).at("parameters");
    EXPECT_THAT(parameters,
                ::testing::StartsWith(
                    positive["expected"][5 + i].get<std::string>() +
                    "\nNegative prompt: " + negative["expected"][5 + i].get<std::string>() + "\n"));
    EXPECT_THAT(parameters, ::testing::HasSubstr(fmt::format("Seed: {},", 5 + i)));
  }
  const CommandResult both = run_zflow(model_args() + " -p x --random-prompts 2 --dynamic-prompts");
  EXPECT_NE(both.status, 0);
  EXPECT_THAT(both.output, ::testing::HasSubstr("--dynamic-prompts excludes --random-prompts"));
}

// --style adds A1111 prompt styles of --styles to the prompt and negative prompt in turn
// (text/prompt_styles.h checks the reading and merging against A1111's rules); an unknown name
// lists the file's.
TEST_F(GenerateCommand, StylesAddToThePrompts) {
  const std::string styles = test::fixture("prompt_styles/styles.csv").string();
  const CommandResult r = run_zflow(
      model_args() + " -W 32 -H 32 --steps 2 --cfg-scale 2 -p 'a red mug' -n blurry --styles " +
      styles + " --style Cinematic --style Product -o " + (out_ / "mug.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(png_text(out_ / "mug.png").at("parameters"),
              ::testing::StartsWith("cinematic still of a red mug, shallow depth of field, film "
                                    "grain, studio lighting\nNegative prompt: blurry, cartoon, "
                                    "drawing, white background\n"));
  const CommandResult bad = run_zflow(model_args() + " -p x --styles " + styles + " --style Noir");
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("--style Noir: not a style of"));
  EXPECT_THAT(bad.output, ::testing::HasSubstr("it has: Cinematic, Product,"));
  const CommandResult lone = run_zflow(model_args() + " -p x --style Noir");
  EXPECT_THAT(lone.output, ::testing::HasSubstr("--style needs --styles FILE"));
}

// --preview-path keeps a small preview of the first image after every step. At 32x32 the preview
// grid is the whole latent grid, and the last step's clean estimate, x - sigma v, is the Euler step
// to sigma 0 itself: the last preview is the picture.
TEST_F(GenerateCommand, PreviewPathHoldsTheLastStepsEstimate) {
  const fs::path preview = out_ / "preview.png";
  const CommandResult r =
      run_zflow(model_args() + " -p '" + kPrompt + "' -W 32 -H 32 --steps 3 --seed 9 -b 2 " +
                "--preview-path " + preview.string() + " -o " + (out_ / "fox.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const io::Image got = io::read_image(preview);
  EXPECT_EQ(got.width, 32);
  EXPECT_GE(test::psnr(got, io::read_image(out_ / "fox_0.png")), 40.0);
  EXPECT_LT(test::psnr(got, io::read_image(out_ / "fox_1.png")), 40.0) << "the first image's";
  EXPECT_FALSE(fs::exists(out_ / "preview.png.partial.png"));

  const CommandResult bad = run_zflow(model_args() + " -p x --preview-path p.jpg");
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("--preview-path p.jpg"));
}

// --hires-model repaints with another model's folder: the golden "flux_to_zimage_lanczos_batch2" of
// make_hires_model.py, a FLUX.1-dev batch of two repainted by Z-Image with CFG 4 against a negative
// prompt of its own; the second folder is the tiny Z-Image one with its tokenizer beside, as a
// downloaded diffusers folder holds it.
TEST_F(GenerateCommand, HiresModelRepaintsWithAnotherFolder) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path second = out_ / "Z-Image";
  fs::create_directories(second);
  for (const char* part : {"model_index.json", "scheduler", "text_encoder", "transformer", "vae"})
    fs::create_symlink(fs::absolute(kDir / "tiny" / part), second / part);
  fs::create_directory_symlink(fs::absolute(tokenizer_), second / "tokenizer");
  const CommandResult r = run_zflow(
      flux_generate_beside_tiny_dev(test::flux_tiny_dev()) +
      " -p 'a cabin by a lake at dusk' -W 32 -H 32 --steps 3 --guidance 3.5 --seed 5 -b 2 "
      "--hires-scale 1.5 --hires-strength 0.5 --hires-steps 4 --hires-cfg-scale 4 "
      "--hires-negative-prompt 'blurry, low quality' --hires-model " +
      second.string() + " -o " + (out_ / "cabin.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path dir = test::fixture("hires_model");
  for (int k = 0; k < 2; ++k) {
    const std::string name = "cabin_" + std::to_string(k) + ".png";
    const io::Image got = io::read_image(out_ / name);
    EXPECT_EQ(got.width, 48);
    EXPECT_GE(test::psnr(got, io::read_image(dir / ("hires_model_flux_to_zimage_lanczos_batch2_" +
                                                    std::to_string(k) + ".png"))),
              40.0)
        << name;
  }
  EXPECT_THAT(png_text(out_ / "cabin_1.png").at("parameters"),
              ::testing::HasSubstr("Hires checkpoint: Z-Image, Hires negative prompt: \"blurry, "
                                   "low quality\", Hires CFG Scale: 4"));

  const CommandResult bad = run_zflow(model_args() + " -p x --hires-sampler nope");
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("--hires-sampler nope: unknown sampler"));
}

// --upscale-model upscales the finished picture (stable-diffusion.cpp's flag) and records it with
// A1111's extras keys; --hires-upscaler takes a model file too.
TEST_F(GenerateCommand, UpscaleModelUpscalesTheFinishedPicture) {
  const fs::path esrgan = test::fixture("esrgan/esrgan_x2_basicsr.safetensors");
  const CommandResult r = run_zflow(model_args() + " -p '" + kPrompt +
                                    "' -W 32 -H 32 --steps 4 --cfg-scale 0 --seed 42 "
                                    "--hires-scale 2 --upscale-model " +
                                    esrgan.string() + " -o " + (out_ / "big.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const io::Image final = io::read_image(test::fixture("hires_fix/hires_fix_turbo_2x_final_0.png"));
  const io::Image got = io::read_image(out_ / "big.png");
  ASSERT_EQ(got.width, 128);
  EXPECT_GE(test::psnr(got, pipeline::upscale_image(*models::load_upscaler(esrgan), final)), 40.0);
  const auto text = png_text(out_ / "big.png");
  EXPECT_THAT(
      text.at("parameters"),
      ::testing::EndsWith(", Postprocess upscale by: 2, Postprocess upscaler: esrgan_x2_basicsr"));
  EXPECT_EQ(nlohmann::json::parse(text.at("zflow_request")).at("upscale").at("repeats"), 1);

  const CommandResult bad = run_zflow(model_args() + " -p x --hires-scale 2 --hires-upscaler " +
                                      (out_ / "no_such.safetensors").string());
  EXPECT_NE(bad.status, 0);
  EXPECT_THAT(bad.output, ::testing::HasSubstr("--hires-upscaler"));
}

// `zflow upscale` against spandrel's 8-bit output of the tiny 4x network (make_esrgan.py).
TEST_F(GenerateCommand, UpscaleCommandMatchesSpandrel) {
  const fs::path dir = test::fixture("esrgan");
  const std::string common = "upscale -i " + (dir / "esrgan_picture.png").string() +
                             " --upscale-model " +
                             (dir / "esrgan_x4_original.safetensors").string();
  const CommandResult r = run_zflow(common + " -o " + (out_ / "up.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(
      test::psnr(io::read_image(out_ / "up.png"), io::read_image(dir / "esrgan_x4_picture.png")),
      40.0);
  EXPECT_EQ(png_text(out_ / "up.png").at("postprocessing"),
            "Postprocess upscale by: 4, Postprocess upscaler: esrgan_x4_original");
  // A width alone keeps the aspect ratio (13 x 11 -> 30 x 25), reached by Lanczos after a pass.
  ASSERT_EQ(run_zflow(common + " -W 30 -o " + (out_ / "w.png").string()).status, 0);
  const io::Image w = io::read_image(out_ / "w.png");
  EXPECT_EQ(std::pair(w.width, w.height), std::pair(30, 25));
  const CommandResult two = run_zflow(common + " -i " + (dir / "esrgan_picture.png").string() +
                                      " -o " + (out_ / "two.png").string());
  EXPECT_NE(two.status, 0);
  EXPECT_THAT(two.output, ::testing::HasSubstr("2 inputs need a %d in the output name"));
  const CommandResult wrong =
      run_zflow("upscale -i " + (dir / "esrgan_picture.png").string() + " --upscale-model " +
                test::fixture("lora/flux_lora_bfl.safetensors").string());
  EXPECT_NE(wrong.status, 0);
  EXPECT_THAT(wrong.output, ::testing::HasSubstr("not an upscaler zflow runs"));
}

// The same with Real-ESRGAN's compact network, as it is published (a .pth nesting `params`).
TEST_F(GenerateCommand, UpscaleCommandRunsCompactPth) {
  const fs::path dir = test::fixture("compact_upscaler");
  const CommandResult r =
      run_zflow("upscale -i " + (dir / "compact_picture.png").string() + " --upscale-model " +
                (dir / "compact_x4_params.pth").string() + " -o " + (out_ / "up.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(
      test::psnr(io::read_image(out_ / "up.png"), io::read_image(dir / "compact_x4_picture.png")),
      40.0);
  EXPECT_EQ(png_text(out_ / "up.png").at("postprocessing"),
            "Postprocess upscale by: 4, Postprocess upscaler: compact_x4_params");
}

// --lora reaches the transformer: a LoRA whose update is zero leaves the golden image as it is,
// the same LoRA with a non-zero up matrix changes it, and a missing file is one line naming it.
TEST_F(GenerateCommand, LoraFlagMergesIntoTheTransformer) {
  const Shape q = io::WeightStore::open(kDir / "tiny/transformer")
                      .get("layers.0.attention.to_q.weight")
                      .shape();
  auto filled = [](Shape shape, float value) {
    return Tensor::from_f32(shape, std::vector<float>(shape_numel(shape), value));
  };
  auto write_lora = [&](const std::string& name, float up) {
    const fs::path path = out_ / name;
    io::write_safetensors(
        path, {{"transformer.layers.0.attention.to_q.lora_A.weight", filled({4, q[1]}, 0.5f)},
               {"transformer.layers.0.attention.to_q.lora_B.weight", filled({q[0], 4}, up)}});
    return path.string();
  };
  const std::string zero = write_lora("zero.safetensors", 0.0f);
  const std::string strong = write_lora("strong.safetensors", 0.5f);
  const std::string args = model_args() + " -p '" + kPrompt +
                           "' -n '' -W 32 -H 48 --steps 2 --cfg-scale 3 -b 2 --seed 11 -o ";
  const io::Image want = io::read_image(kDir / "zimage_tiny_diffusers_batch2_0.png");

  const CommandResult same = run_zflow(args + (out_ / "zero_%d.png").string() + " --lora " + zero);
  ASSERT_EQ(same.status, 0) << same.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "zero_0.png"), want), 40.0);

  const CommandResult moved =
      run_zflow(args + (out_ / "strong_%d.png").string() + " --lora " + strong + ":2");
  ASSERT_EQ(moved.status, 0) << moved.output;
  EXPECT_LT(test::psnr(io::read_image(out_ / "strong_0.png"), want), 30.0);
  // The PNG says which LoRAs made it, in A1111's text with A1111's short hash (SHA-256 of the
  // bytes after the safetensors header, here by coreutils) and in the request JSON.
  std::ifstream lora(strong, std::ios::binary);
  uint64_t header = 0;
  lora.read(reinterpret_cast<char*>(&header), sizeof header);  // little-endian, as x86
  const std::string hash =
      run_command("tail -c +" + std::to_string(8 + header + 1) + " " + strong + " | sha256sum")
          .output.substr(0, 12);
  const auto text = png_text(out_ / "strong_0.png");
  EXPECT_THAT(text.at("parameters"),
              ::testing::EndsWith(
                  ", LoRAs: \"strong.safetensors: 2\", Lora hashes: \"strong: " + hash + "\""));
  const auto j = nlohmann::json::parse(text.at("zflow_request"));
  EXPECT_EQ(j["loras"], nlohmann::json::parse(R"([{"file": "strong.safetensors", "scale": 2.0,
                                                   "hash": ")" +
                                              hash + R"("}])"));

  const CommandResult missing = run_zflow(args + (out_ / "x.png").string() + " --lora " +
                                          (out_ / "none.safetensors").string());
  EXPECT_EQ(missing.status, 1);
  EXPECT_THAT(missing.output, ::testing::HasSubstr("no such LoRA file"));
}

TEST_F(GenerateCommand, MissingComponentIsOneLineNamingIt) {
  // The fixture folder has no tokenizer/ and none is given.
  const CommandResult r = run_zflow("generate -m " + (kDir / "tiny").string() + " -p fox -o " +
                                    (out_ / "x.png").string());
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  EXPECT_NE(r.output.find("tiny/tokenizer is missing"), std::string::npos) << r.output;
  // A text encoder where the VAE belongs: named, with what was expected.
  const CommandResult wrong =
      run_zflow(model_args() + " --vae " + (kDir / "tiny/text_encoder").string() + " -p fox -o " +
                (out_ / "x.png").string());
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.output.find("[zimage] VAE"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("not a KL autoencoder"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("(it holds a qwen3 text encoder"), std::string::npos) << wrong.output;
}

// FLUX.1-dev from the command line, as stable-diffusion.cpp's flag names give its parts: the golden
// cases "dev" (64x48, 3 steps, guidance 3.5, seed 42), with --shift 3 "dev_scheduler_static", and
// with true CFG "dev_true_cfg_batch2" must match diffusers' FluxPipeline.
TEST_F(GenerateCommand, FluxDevMatchesDiffusers) {
  const fs::path clip = test::shared_asset("flux1_tokenizer/tokenizer_clip_l");
  const fs::path t5 = test::shared_asset("flux1_tokenizer/tokenizer_t5");
  ZF_REQUIRE_ASSET(clip);
  ZF_REQUIRE_ASSET(t5);
  const fs::path flux = test::fixture("flux_pipeline");
  const std::string args = "generate --device cpu -m " + (flux / "tiny_dev").string() +
                           " --clip-tokenizer " + clip.string() + " --t5-tokenizer " + t5.string() +
                           " -p 'a red fox sitting in fresh snow, morning light' -W 64 -H 48 "
                           "--steps 3 --guidance 3.5 --seed 42 -o ";
  const CommandResult r = run_zflow(args + (out_ / "fox.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "fox.png"),
                       io::read_image(flux / "flux_tiny_diffusers_dev_0.png")),
            40.0);
  EXPECT_EQ(png_text(out_ / "fox.png").at("parameters"),
            "a red fox sitting in fresh snow, morning light\nSteps: 3, Sampler: Euler, CFG scale: "
            "1, Distilled CFG Scale: 3.5, Seed: 42, Size: 64x48, Model: tiny_dev");

  // --shift replaces the dev schedule's dynamic shift with a static one: diffusers' image for
  // the scheduler config with use_dynamic_shifting false and shift 3 ("dev_scheduler_static").
  const CommandResult shifted = run_zflow(args + (out_ / "shift.png").string() + " --shift 3");
  ASSERT_EQ(shifted.status, 0) << shifted.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "shift.png"),
                       io::read_image(flux / "flux_tiny_diffusers_dev_scheduler_static_0.png")),
            40.0);
  EXPECT_NE(png_text(out_ / "shift.png").at("parameters").find(", Shift: 3,"), std::string::npos);

  // With one, the golden case "dev_true_cfg_batch2": -n, --cfg-scale 4, a batch of two.
  const CommandResult both = run_zflow(args + (out_ / "cfg_%d.png").string() +
                                       " -n 'blurry, grey, low quality' --cfg-scale 4 -b 2");
  ASSERT_EQ(both.status, 0) << both.output;
  for (int k = 0; k < 2; ++k) {
    const std::string name = "cfg_" + std::to_string(k) + ".png";
    EXPECT_GE(test::psnr(io::read_image(out_ / name),
                         io::read_image(flux / ("flux_tiny_diffusers_dev_true_cfg_batch2_" +
                                                std::to_string(k) + ".png"))),
              40.0)
        << name;
  }
  EXPECT_NE(png_text(out_ / "cfg_1.png")
                .at("parameters")
                .find("Negative prompt: blurry, grey, low quality\nSteps: 3, Sampler: Euler, CFG "
                      "scale: 4, Distilled CFG Scale: 3.5"),
            std::string::npos);
}

// FLUX.2 klein from its diffusers folder: the distilled model with its defaults but the size and
// steps, and the base model's CFG (its default scale 4, against the empty prompt) as in the golden
// cases "klein" and "base". In float32 matmuls, as the reference: this tiny model's text path is
// made steep so that every text-side mistake shows, and bf16 activations alone (the default on an
// AVX-512 BF16 CPU) move it to ~33 dB.
// FLUX.1 Fill from a folder with the dev folder's text encoders and VAE given as files: the
// golden case "fill" (the Fill defaults of guidance 30 and strength 1 are used when not given),
// and outpainting, which Fill needs no mask for.
TEST_F(GenerateCommand, FluxFillMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path fill = test::fixture("flux_fill_pipeline");
  const std::string args =
      flux_generate_beside_tiny_dev(fill / "tiny_fill") +
      " -p 'a red fox sitting in fresh snow, morning light' --steps 3 --seed 3 -i " +
      (fill / "flux_fill_tiny_diffusers_init.png").string();
  const CommandResult r =
      run_zflow(args + " --mask " + (fill / "flux_fill_tiny_diffusers_mask.png").string() + " -o " +
                (out_ / "fill.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "fill.png"),
                       io::read_image(fill / "flux_fill_tiny_diffusers_fill_0.png")),
            40.0);
  const auto j = nlohmann::json::parse(png_text(out_ / "fill.png").at("zflow_request"));
  EXPECT_EQ(j["architecture"], "FLUX.1-Fill-dev");
  EXPECT_EQ(j["guidance"], 30.0);
  EXPECT_EQ(j["strength"], 1.0);

  const CommandResult wide =
      run_zflow(args + " --outpaint 0,0,32,0 -o " + (out_ / "wide.png").string());
  ASSERT_EQ(wide.status, 0) << wide.output;
  EXPECT_EQ(io::read_image(out_ / "wide.png").width, 96);
  const CommandResult no_mask = run_zflow(args + " -o " + (out_ / "x.png").string());
  EXPECT_NE(no_mask.status, 0);
  EXPECT_NE(no_mask.output.find("fills the white part of a mask"), std::string::npos)
      << no_mask.output;
}

TEST_F(GenerateCommand, FluxCannyDepthMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path dir = test::fixture("flux_control_pipeline");
  const fs::path edges = dir / "flux_control_tiny_diffusers_control_control.png";
  const std::string args =
      flux_generate_beside_tiny_dev(dir / "tiny_control") +
      " --matmul-precision fp32 -p 'a red fox sitting in fresh snow, morning light' --steps 3 "
      "--guidance 30 --seed 3 "
      "--control-image " +
      edges.string();
  const CommandResult r = run_zflow(args + " -o " + (out_ / "canny.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "canny.png"),
                       io::read_image(dir / "flux_control_tiny_diffusers_control_0.png")),
            40.0);  // test_flux_control_pipeline.cpp's bound
  const auto j = nlohmann::json::parse(png_text(out_ / "canny.png").at("zflow_request"));
  EXPECT_EQ(j["architecture"], "FLUX.1-Canny/Depth-dev");
  EXPECT_EQ(j["mode"], "control");
  EXPECT_EQ(j["control_image"], edges.string());

  const CommandResult scaled =
      run_zflow(args + " --control-strength 0.5 -o " + (out_ / "x.png").string());
  EXPECT_NE(scaled.status, 0);
  EXPECT_NE(scaled.output.find("control strength"), std::string::npos) << scaled.output;
}

// A FLUX.1 ControlNet from the CLI: tiny_dev with the tiny Union ControlNet, its mode by name, as
// diffusers' FluxControlNetPipeline made case "union"; a mode it cannot name is refused.
TEST_F(GenerateCommand, FluxControlNetMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path dir = test::fixture("flux_controlnet_pipeline");
  const std::string args =
      "generate --device cpu --matmul-precision fp32 -m " + test::flux_tiny_dev().string() +
      " --clip-tokenizer " + test::flux1_tokenizer("tokenizer_clip_l").string() +
      " --t5-tokenizer " + test::flux1_tokenizer("tokenizer_t5").string() + " --control-net " +
      (dir / "union").string() + " --control-image " +
      (dir / "flux_controlnet_tiny_diffusers_union_control.png").string() +
      " --control-strength 0.7 -p 'a red fox sitting in fresh snow, morning light' -W 64 -H 48 "
      "--steps 3 --guidance 3.5 --max-sequence-length 16 --seed 3";
  const CommandResult r =
      run_zflow(args + " --control-mode depth -o " + (out_ / "controlled.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "controlled.png"),
                       io::read_image(dir / "flux_controlnet_tiny_diffusers_union_0.png")),
            60.0);  // test_flux_controlnet_pipeline.cpp's bound
  const auto j = nlohmann::json::parse(png_text(out_ / "controlled.png").at("zflow_request"));
  EXPECT_EQ(j["mode"], "control");
  EXPECT_EQ(j["controlnet"], "union");
  ASSERT_EQ(j["controls"].size(), 1u);
  EXPECT_EQ(j["controls"][0]["mode"], 2);
  EXPECT_EQ(j["controls"][0]["scale"], 0.7f);
  EXPECT_EQ(j["controls"][0]["image"],
            (dir / "flux_controlnet_tiny_diffusers_union_control.png").string());
  EXPECT_NE(
      png_text(out_ / "controlled.png")
          .at("parameters")
          .find("ControlNet 0: \"Model: union, Weight: 0.7, Guidance Start: 0, Guidance End: 1\""),
      std::string::npos);

  // Two controls for the one ControlNet, each flag once per image (the end once for both would
  // apply to both), as case "union_two_controls".
  const std::string two =
      "generate --device cpu --matmul-precision fp32 -m " + test::flux_tiny_dev().string() +
      " --clip-tokenizer " + test::flux1_tokenizer("tokenizer_clip_l").string() +
      " --t5-tokenizer " + test::flux1_tokenizer("tokenizer_t5").string() + " --control-net " +
      (dir / "union").string() + " --control-image " +
      (dir / "flux_controlnet_tiny_diffusers_union_two_controls_control0.png").string() +
      " --control-image " +
      (dir / "flux_controlnet_tiny_diffusers_union_two_controls_control1.png").string() +
      " --control-mode depth --control-mode canny --control-strength 0.6 --control-strength 0.5 "
      "--control-end 1 --control-end 0.7 -p 'a red fox sitting in fresh snow, morning light' "
      "-W 64 -H 48 --steps 3 --guidance 3.5 --max-sequence-length 16 --seed 12";
  const CommandResult both = run_zflow(two + " -o " + (out_ / "two.png").string());
  ASSERT_EQ(both.status, 0) << both.output;
  EXPECT_GE(
      test::psnr(io::read_image(out_ / "two.png"),
                 io::read_image(dir / "flux_controlnet_tiny_diffusers_union_two_controls_0.png")),
      60.0);
  const CommandResult miscounted =
      run_zflow(two + " --control-start 0 --control-start 0.1 --control-start 0.2 -o " +
                (out_ / "x.png").string());
  EXPECT_NE(miscounted.status, 0);
  EXPECT_NE(miscounted.output.find("--control-start is given 3 times for 2 control images"),
            std::string::npos)
      << miscounted.output;

  const CommandResult bad =
      run_zflow(args + " --control-mode scribble -o " + (out_ / "x.png").string());
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.output.find("--control-mode scribble: expected a number or one of canny 0"),
            std::string::npos)
      << bad.output;
}

// Redux from the CLI: the tiny dev folder, the tiny Redux folder and -r, as diffusers'
// FluxPriorReduxPipeline + FluxPipeline made case "redux"; Redux is refused for other families.
TEST_F(GenerateCommand, FluxReduxMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path dir = test::fixture("flux_redux");
  const fs::path picture = dir / "flux_redux_tiny_image.png";
  const std::string args =
      "generate --device cpu --matmul-precision fp32 -m " + test::flux_tiny_dev().string() +
      " --clip-tokenizer " + test::flux1_tokenizer("tokenizer_clip_l").string() +
      " --t5-tokenizer " + test::flux1_tokenizer("tokenizer_t5").string() + " --redux " +
      (dir / "tiny_redux").string() + " -r " + picture.string() +
      " -p 'a red fox sitting in fresh snow, morning light' -W 64 -H 48 --steps 2 "
      "--guidance 3.5 --seed 3 -o ";
  const CommandResult r = run_zflow(args + (out_ / "variation.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "variation.png"),
                       io::read_image(dir / "flux_redux_tiny_redux_0.png")),
            60.0);  // test_flux_redux_pipeline.cpp's bound
  const auto j = nlohmann::json::parse(png_text(out_ / "variation.png").at("zflow_request"));
  EXPECT_EQ(j["redux"], true);
  EXPECT_EQ(j["reference_images"], nlohmann::json::array({picture.string()}));

  const CommandResult zimage =
      run_zflow(model_args() + " -p x --redux " + (dir / "tiny_redux").string() + " -o " +
                (out_ / "x.png").string());
  EXPECT_NE(zimage.status, 0);
  EXPECT_NE(zimage.output.find("Redux runs with FLUX.1"), std::string::npos) << zimage.output;
}

TEST_F(GenerateCommand, FluxKontextMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path kontext = test::fixture("flux_kontext_pipeline");
  const fs::path ref = kontext / "flux_kontext_tiny_diffusers_kontext_ref.png";
  const std::string args =
      flux_generate_beside_tiny_dev(kontext / "tiny_kontext") + " --diffusion-model " +
      (test::flux_tiny_dev() / "transformer").string() +
      " --matmul-precision fp32 -p 'make the disc blue and the sky stormy' --steps 2 "
      "--guidance 2.5 --seed 4 -r " +
      ref.string();
  const CommandResult r = run_zflow(args + " -W 64 -H 48 -o " + (out_ / "edit.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "edit.png"),
                       io::read_image(kontext / "flux_kontext_tiny_diffusers_kontext_0.png")),
            55.0);  // test_flux_kontext_pipeline.cpp's bound
  const auto j = nlohmann::json::parse(png_text(out_ / "edit.png").at("zflow_request"));
  EXPECT_EQ(j["architecture"], "FLUX.1-Kontext-dev");
  EXPECT_EQ(j["reference_images"], nlohmann::json::array({ref.string()}));

  const CommandResult two =
      run_zflow(args + " -r " + ref.string() + " -o " + (out_ / "x.png").string());
  EXPECT_NE(two.status, 0);
  EXPECT_NE(two.output.find("2 reference images"), std::string::npos) << two.output;
}

// Z-Image Omni from the command line: the golden case "edit" (one condition image with -r, the
// output at its size), with the tiny Z-Image text encoder and VAE given as files.
TEST_F(GenerateCommand, ZImageOmniMatchesDiffusers) {
  const fs::path omni = test::fixture("zimage_omni");
  const fs::path picture = omni / "zimage_omni_tiny_a.png";
  const std::string args =
      "generate --device cpu --matmul-precision fp32 -m " + (omni / "tiny_omni").string() +
      " --text-encoder " + (kDir / "tiny" / "text_encoder").string() + " --vae " +
      (kDir / "tiny" / "vae").string() + " --tokenizer " + tokenizer_.string() +
      " -p 'make the disc a blue moon over the snow' --steps 3 --cfg-scale 0 "
      "--seed 4 -r " +
      picture.string() + " -o ";
  const CommandResult r = run_zflow(args + (out_ / "edit.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "edit.png"),
                       io::read_image(omni / "zimage_omni_tiny_edit_0.png")),
            60.0);  // test_zimage_omni_pipeline.cpp's bound
  const auto j = nlohmann::json::parse(png_text(out_ / "edit.png").at("zflow_request"));
  EXPECT_EQ(j["mode"], "omni");
  EXPECT_EQ(j["reference_images"], nlohmann::json::array({picture.string()}));

  // The same model as separate files: known as Omni by its transformer, its SigLIP 2 tower given
  // with --siglip (the processor's defaults then: at most 256 patches, so another image).
  const CommandResult files = run_zflow(
      "generate --device cpu --diffusion-model " + (omni / "tiny_omni" / "transformer").string() +
      " --siglip " + (omni / "tiny_omni" / "siglip").string() + " --text-encoder " +
      (kDir / "tiny" / "text_encoder").string() + " --vae " + (kDir / "tiny" / "vae").string() +
      " --tokenizer " + tokenizer_.string() + " -p x --steps 1 -r " + picture.string() + " -o " +
      (out_ / "files.png").string());
  ASSERT_EQ(files.status, 0) << files.output;
  EXPECT_EQ(io::read_image(out_ / "files.png").width, 80);

  // A plain Z-Image model takes no reference image.
  const CommandResult plain =
      run_zflow(model_args() + " -p x -r " + picture.string() + " -o " + (out_ / "x.png").string());
  EXPECT_NE(plain.status, 0);
  EXPECT_NE(plain.output.find("not an Omni model"), std::string::npos) << plain.output;
}

// Inpainting only the masked area (--mask-crop) with FLUX.1 dev and FLUX.2 klein against
// diffusers (tools/golden/make_mask_crop.py): a 100x72 picture, the masked box inpainted at 64x48
// (klein: at 96x64, the picture's size in whole tokens, as its inpainting pipeline runs) and
// pasted back, the output at the picture's size. FLUX.1: FluxInpaintPipeline with
// padding_mask_crop; klein: its inpainting pipeline on diffusers' crop, pasted back by
// VaeImageProcessor (Flux2KleinInpaintPipeline's own paste-back skips the resize: 27.8 dB from
// this). Measured 88.5 and 91.5 dB, bound 40, the pipelines' own; the pieces are byte-exact
// (test_mask_crop.cpp).
TEST_F(GenerateCommand, MaskCropMatchesDiffusers) {
  ZF_REQUIRE_FLUX1_TOKENIZERS();
  const fs::path dir = test::fixture("mask_crop");
  const std::string picture = (dir / "mask_crop_picture.png").string();
  // FLUX.1 inpaints the box at the size asked for; FLUX.2 klein's inpainting at the picture's
  // own size rounded down to whole tokens (96x64 here), as diffusers' does whatever is asked.
  const std::string common =
      " --device cpu --matmul-precision fp32 -p 'a red fox sitting in "
      "fresh snow, morning light' -i " +
      picture + " --steps 3 --strength 0.9 -o ";
  const std::string flux1 = "generate -m " + test::flux_tiny_dev().string() + " --clip-tokenizer " +
                            test::flux1_tokenizer("tokenizer_clip_l").string() +
                            " --t5-tokenizer " + test::flux1_tokenizer("tokenizer_t5").string() +
                            " --guidance 3.5 --seed 5 --mask " +
                            (dir / "mask_crop_mask_blob.png").string();
  CommandResult r =
      run_zflow(flux1 + " --mask-crop 8 -W 64 -H 48" + common + (out_ / "f1.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  const io::Image f1 = io::read_image(out_ / "f1.png");
  EXPECT_EQ(f1.width, 100);
  EXPECT_GE(test::psnr(f1, io::read_image(dir / "mask_crop_flux1_inpaint_0.png")), 40.0);
  const auto j = nlohmann::json::parse(png_text(out_ / "f1.png").at("zflow_request"));
  EXPECT_EQ(j["mask_crop_padding"], 8);

  // The mask softened first (--mask-blur: diffusers' mask_processor.blur, then the same run).
  r = run_zflow(flux1 + " --mask-crop 8 --mask-blur 4 -W 64 -H 48" + common +
                (out_ / "blur.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "blur.png"),
                       io::read_image(dir / "mask_crop_flux1_inpaint_blur_0.png")),
            40.0);
  EXPECT_EQ(nlohmann::json::parse(png_text(out_ / "blur.png").at("zflow_request"))["mask_blur"],
            4.0);

  const std::string flux2 =
      "generate -m " + (test::fixture("flux2_pipeline") / "tiny_klein").string() + " --tokenizer " +
      tokenizer_.string() + " --seed 6 --mask " + (dir / "mask_crop_mask_edge.png").string();
  r = run_zflow(flux2 + " --mask-crop 12" + common + (out_ / "f2.png").string());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "f2.png"),
                       io::read_image(dir / "mask_crop_flux2_inpaint_0.png")),
            40.0);

  // Where the mask is black the output is the picture itself (the overlay keeps it); inside the
  // mask it is not.
  const io::Image original = io::read_image(picture);
  const io::Image blob = io::read_image(dir / "mask_crop_mask_blob.png");
  size_t kept = 0, changed = 0;
  for (size_t i = 0; i < original.rgb.size(); ++i) {
    if (blob.rgb[i] == 0) kept += f1.rgb[i] == original.rgb[i];
    if (blob.rgb[i] == 255) changed += f1.rgb[i] != original.rgb[i];
  }
  EXPECT_EQ(kept, static_cast<size_t>(std::count(blob.rgb.begin(), blob.rgb.end(), 0)));
  EXPECT_GT(changed, 0u);

  // A black mask leaves nothing to crop around: an error saying so.
  io::write_image(out_ / "black.png", io::Image{100, 72, std::vector<uint8_t>(100 * 72 * 3, 0)});
  const CommandResult none = run_zflow(
      "generate -m " + test::flux_tiny_dev().string() + " --clip-tokenizer " +
      test::flux1_tokenizer("tokenizer_clip_l").string() + " --t5-tokenizer " +
      test::flux1_tokenizer("tokenizer_t5").string() + " --mask " + (out_ / "black.png").string() +
      " --mask-crop 8" + common + (out_ / "x.png").string());
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.output.find("black everywhere"), std::string::npos) << none.output;
}

TEST_F(GenerateCommand, Flux2KleinMatchesDiffusers) {
  const fs::path flux2 = test::fixture("flux2_pipeline");
  auto args = [&](const char* model) {
    return "generate --device cpu --matmul-precision fp32 -m " + (flux2 / model).string() +
           " --tokenizer " + tokenizer_.string() +
           " -p 'a red fox sitting in fresh snow, morning light' -W 64 -H 48 "
           "--steps 3 -o ";
  };
  const CommandResult klein =
      run_zflow(args("tiny_klein") + (out_ / "klein.png").string() + " --seed 42");
  ASSERT_EQ(klein.status, 0) << klein.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "klein.png"),
                       io::read_image(flux2 / "flux2_tiny_diffusers_klein_0.png")),
            40.0);
  EXPECT_EQ(png_text(out_ / "klein.png").at("parameters"),
            "a red fox sitting in fresh snow, morning light\nSteps: 3, Sampler: Euler, CFG scale: "
            "1, Seed: 42, Size: 64x48, Model: tiny_klein");
  const CommandResult base =
      run_zflow(args("tiny_klein_base") + (out_ / "base.png").string() + " --seed 5");
  ASSERT_EQ(base.status, 0) << base.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "base.png"),
                       io::read_image(flux2 / "flux2_tiny_diffusers_base_0.png")),
            40.0);
  EXPECT_NE(png_text(out_ / "base.png").at("parameters").find("CFG scale: 4,"), std::string::npos);
  // Inpainting: the init image's size, the strength in the record.
  const CommandResult inpaint =
      run_zflow("generate --device cpu --matmul-precision fp32 -m " +
                (flux2 / "tiny_klein").string() + " --tokenizer " + tokenizer_.string() +
                " -p 'a red fox sitting in fresh snow, morning light' -i " +
                (flux2 / "flux2_inpaint_tiny_diffusers_init_a.png").string() + " --mask " +
                (flux2 / "flux2_inpaint_tiny_diffusers_mask_tokens.png").string() +
                " --steps 4 --seed 31 -o " + (out_ / "inpaint.png").string());
  ASSERT_EQ(inpaint.status, 0) << inpaint.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "inpaint.png"),
                       io::read_image(flux2 / "flux2_inpaint_tiny_diffusers_inpaint_0.png")),
            40.0);
  EXPECT_NE(png_text(out_ / "inpaint.png").at("parameters").find("Denoising strength: 0.8"),
            std::string::npos);
  const CommandResult guided =
      run_zflow(args("tiny_klein") + (out_ / "x.png").string() + " --guidance 3.5");
  EXPECT_NE(guided.status, 0);
  EXPECT_NE(guided.output.find("no guidance input"), std::string::npos) << guided.output;
}

// FLUX.2-dev: the Mistral tokenizer folder (vocab.json + merges.txt) and --guidance, its
// embedded guidance, which the parameters record as Forge does.
TEST_F(GenerateCommand, Flux2DevMatchesDiffusers) {
  const fs::path flux2 = test::fixture("flux2_pipeline");
  const fs::path mistral = test::shared_asset("flux2_mistral_tokenizer");
  ZF_REQUIRE_ASSET(mistral / "vocab.json");
  const CommandResult dev = run_zflow(
      "generate --device cpu --matmul-precision fp32 -m " + (flux2 / "tiny_dev").string() +
      " --tokenizer " + mistral.string() +
      " -p 'a red fox sitting in fresh snow, morning light' -W 64 -H 48 --steps 3 --guidance 4 "
      "--seed 42 -o " +
      (out_ / "dev.png").string());
  ASSERT_EQ(dev.status, 0) << dev.output;
  EXPECT_GE(test::psnr(io::read_image(out_ / "dev.png"),
                       io::read_image(flux2 / "flux2_dev_tiny_diffusers_dev_0.png")),
            40.0);
  EXPECT_EQ(png_text(out_ / "dev.png").at("parameters"),
            "a red fox sitting in fresh snow, morning light\nSteps: 3, Sampler: Euler, CFG scale: "
            "1, Seed: 42, Size: 64x48, Model: tiny_dev, Distilled CFG Scale: 4");
}

}  // namespace
}  // namespace zflow
