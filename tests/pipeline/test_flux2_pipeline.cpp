// The FLUX.2 klein pipeline against diffusers 0.42.1's Flux2KleinPipeline on a tiny random model
// (tools/golden/make_flux2_pipeline.py) with the real Qwen3 tokenizer: the distilled model
// (no CFG) alone, as a batch of two with a Chinese prompt and with a max_sequence_length that
// cuts the chat template; the undistilled base (CFG against the empty prompt, guidance 4 and
// 2.5, a batch of two); editing with one, two and a large reference image; non-square sizes.
// FLUX.2-dev against Flux2Pipeline (tools/golden/make_flux2_dev_pipeline.py: a tiny Mistral3
// text encoder, the real Mistral tokenizer): embedded guidance 4, 2.5 and 3, a batch of two, a
// text length that cuts the system message, editing with a reference. Klein's inpainting and
// img2img against Flux2KleinInpaintPipeline (tools/golden/make_flux2_inpaint.py, the klein
// models above): masks on whole tokens and across them, strengths that cut the schedule, the base
// with CFG, img2img as a white mask, and a large init image with a mask of its raw size and a
// reference image.
// Each output must match diffusers' uint8 image with PSNR >= 40 dB: the reference runs the same
// float32 arithmetic in another summation order (~1e-6 relative on the latents), so after the
// random decoder and 8-bit rounding a few pixels may land a level apart (measured: 76-85 dB or
// equal). Mistakes move them far below (measured on this C++ code): hidden state 8 in place of 9
// 22-37 dB, the Z-Image template (thinking on) 22-29 dB, no attention mask on the padding
// 16-21 dB, CFG 10% weaker 32-39 dB, " " in place of the empty negative prompt 20-23 dB; for
// dev (measured 78-87 dB): hidden state 9 in place of 10 25-28 dB, guidance 10% weaker
// 16-22 dB, padding rows that attend to themselves 18-19 dB (the case cut to 40 ids has none);
// for inpainting (measured 76-87 dB): the mask taken to the tokens by nearest neighbour in
// place of bilinear 17-18 dB, the init image missing from the references 21-38 dB.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/flux2_pipeline.h"
#include "pipeline/flux2_references.h"
#include "run_together_check.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux2_pipeline");
constexpr double kMinPsnr = 40.0;

fs::path tokenizer() {
  return test::shared_asset("qwen3_tokenizer");
}
fs::path mistral_tokenizer() {
  return test::shared_asset("flux2_mistral_tokenizer");
}

// The cases of both fixture files, each with the torch CPU capability its noise was drawn with.
const std::vector<nlohmann::json>& cases() {
  static const std::vector<nlohmann::json> all = [] {
    std::vector<nlohmann::json> out;
    for (const char* file :
         {"flux2_tiny_diffusers_cases.json", "flux2_dev_tiny_diffusers_cases.json",
          "flux2_inpaint_tiny_diffusers_cases.json"}) {
      std::ifstream in(kDir / file);
      const nlohmann::json j = nlohmann::json::parse(in);
      for (nlohmann::json c : j["cases"]) {
        c["torch_cpu_capability"] = j["_meta"]["torch_cpu_capability"];
        out.push_back(std::move(c));
      }
    }
    return out;
  }();
  return all;
}

const nlohmann::json& find_case(const std::string& name) {
  for (const auto& c : cases())
    if (c["name"] == name) return c;
  throw std::runtime_error("no case " + name);
}

const Flux2Pipeline& pipeline(const std::string& model) {
  static const Flux2Pipeline klein =
      Flux2Pipeline::load({.model_dir = kDir / "tiny_klein", .tokenizer = tokenizer()});
  static const Flux2Pipeline base =
      Flux2Pipeline::load({.model_dir = kDir / "tiny_klein_base", .tokenizer = tokenizer()});
  if (model == "tiny_dev") {
    static const Flux2Pipeline dev =
        Flux2Pipeline::load({.model_dir = kDir / "tiny_dev", .tokenizer = mistral_tokenizer()});
    return dev;
  }
  return model == "tiny_klein" ? klein : base;
}

Flux2Request request_for(const nlohmann::json& c) {
  Flux2Request r;
  r.prompt = c["prompt"];
  if (c.contains("width")) r.width = c["width"].get<int>();
  if (c.contains("height")) r.height = c["height"].get<int>();
  if (c.contains("references"))
    for (const auto& file : c["references"]) r.references.push_back(io::read_image(kDir / file));
  if (c.contains("reference")) r.references.push_back(io::read_image(kDir / c["reference"]));
  if (c.contains("init")) r.init_image = io::read_image(kDir / c["init"]);
  // img2img is the inpainting pipeline under a white mask: zflow's runs without one.
  if (c.contains("mask") && c["name"] != "img2img") r.mask = io::read_image(kDir / c["mask"]);
  if (c.contains("strength")) r.strength = c["strength"].get<double>();
  r.steps = c["steps"].get<int>();
  // diffusers' guidance_scale: dev's embedded guidance, the klein base's CFG scale.
  if (c.contains("guidance")) {
    if (c["model"] == "tiny_dev") {
      r.guidance = c["guidance"].get<float>();
    } else {
      r.cfg_scale = c["guidance"].get<float>();
    }
  }
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  if (c.contains("max_sequence_length"))
    r.max_sequence_length = c["max_sequence_length"].get<int>();
  // torch.randn's float log/sin/cos follow the CPU kernel the fixture was made with.
  const std::string cap = c["torch_cpu_capability"];
  r.normal_math = cap == "AVX2" ? NormalMath::Avx2Cephes : NormalMath::Libm;
  return r;
}

// The part [x, y, w, h] of an image.
io::Image cropped(const io::Image& image, const std::vector<int>& box) {
  const int x = box.at(0), y = box.at(1), w = box.at(2), h = box.at(3);
  io::Image out{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * 3)};
  for (int row = 0; row < h; ++row)
    std::copy_n(image.rgb.begin() + (static_cast<size_t>(y + row) * image.width + x) * 3,
                static_cast<size_t>(w) * 3, out.rgb.begin() + static_cast<size_t>(row) * w * 3);
  return out;
}

void expect_images(const std::string& name, const std::vector<io::Image>& images) {
  const auto& expected = find_case(name)["expected"];
  ASSERT_EQ(images.size(), expected.size()) << name;
  for (size_t k = 0; k < images.size(); ++k) {
    const io::Image want = io::read_image(kDir / expected[k].get<std::string>());
    const io::Image got = find_case(name).contains("crop")
                              ? cropped(images[k], find_case(name)["crop"].get<std::vector<int>>())
                              : images[k];
    ASSERT_EQ(got.width, want.width);
    ASSERT_EQ(got.height, want.height);
    const double db = test::psnr(got, want);
    std::printf("  %s[%zu]: PSNR %.1f dB\n", name.c_str(), k, db);
    EXPECT_GE(db, kMinPsnr) << name << " image " << k;
  }
}

void check_case(const std::string& name) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  ZF_REQUIRE_ASSET(mistral_tokenizer() / "vocab.json");
  const nlohmann::json& c = find_case(name);
  expect_images(name, pipeline(c["model"]).generate(request_for(c)));
}

TEST(Flux2PipelineGolden, KleinTextToImage) {
  check_case("klein");
}
TEST(Flux2PipelineGolden, KleinBatchOfTwoWithAChinesePrompt) {
  check_case("klein_batch2");
}
TEST(Flux2PipelineGolden, KleinShortTextLengthCutsTheTemplate) {
  check_case("klein_maxlen");
}
TEST(Flux2PipelineGolden, BaseRunsCfgAgainstTheEmptyPrompt) {
  check_case("base");
}
TEST(Flux2PipelineGolden, BaseBatchOfTwo) {
  check_case("base_batch2");
}

// Editing: one reference of whole tokens (the output takes its 80x64), two references cropped to
// whole tokens (87x69 -> 80x64, 100x72 -> 96x64) at t = 10 and 20, and on the base model one of
// over 1024^2 pixels, Lanczos-resized to about that area before the crop.
TEST(Flux2PipelineGolden, KleinEditsOneReference) {
  check_case("klein_edit");
}
TEST(Flux2PipelineGolden, KleinEditsWithTwoCroppedReferences) {
  check_case("klein_edit_two");
}
TEST(Flux2PipelineGolden, BaseEditsWithALargeReference) {
  check_case("base_edit_large");
}

// Each reference exactly as the pipeline hands it to the VAE: Pillow's Lanczos for the large one
// and the centre crops, pixel for pixel.
TEST(Flux2PipelineGolden, ReferencesArePreparedAsThePipelineDoes) {
  for (const char* name : {"ref_a", "ref_b", "ref_c", "ref_large"}) {
    const std::string stem = std::string("flux2_tiny_diffusers_") + name;
    const io::Image got = flux2_reference_image(io::read_image(kDir / (stem + ".png")), 16, 0);
    const io::Image want = io::read_image(kDir / (stem + "_prepared.png"));
    EXPECT_EQ(got.width, want.width) << name;
    EXPECT_EQ(got.height, want.height) << name;
    EXPECT_TRUE(got.rgb == want.rgb) << name;
  }
  const io::Image small = io::Image{70, 63, std::vector<uint8_t>(70 * 63 * 3, 9)};
  EXPECT_NE(test::error_of([&] { flux2_reference_image(small, 16, 0); }).find("at least 64"),
            std::string::npos);
  const io::Image thin = io::Image{64, 600, std::vector<uint8_t>(64 * 600 * 3, 9)};
  EXPECT_NE(test::error_of([&] { flux2_reference_image(thin, 16, 1); }).find("aspect ratio"),
            std::string::npos);
  // 1040 x 1100: scale sqrt(1024^2 / 1144000) = 0.95739..., sides int(995.7) and int(1053.1),
  // cropped to 992 x 1040.
  const io::Image large =
      flux2_reference_image(io::Image{1040, 1100, std::vector<uint8_t>(1040 * 1100 * 3, 9)}, 16, 0);
  EXPECT_EQ(large.width, 992);
  EXPECT_EQ(large.height, 1040);
}

TEST(Flux2PipelineGolden, VariantsAndDefaults) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  EXPECT_EQ(pipeline("tiny_klein").variant(), Flux2Variant::Klein);
  EXPECT_EQ(pipeline("tiny_klein_base").variant(), Flux2Variant::KleinBase);
  const Flux2Settings klein = pipeline("tiny_klein").resolve({.prompt = "x"});
  EXPECT_EQ(klein.steps, 4);
  EXPECT_FALSE(klein.cfg);
  EXPECT_EQ(klein.width, 1024);
  EXPECT_EQ(klein.max_sequence_length, 512);
  const Flux2Settings base = pipeline("tiny_klein_base").resolve({.prompt = "x"});
  EXPECT_EQ(base.steps, 50);
  EXPECT_TRUE(base.cfg);
  EXPECT_EQ(base.cfg_scale, 4.0f);
}

TEST(Flux2PipelineGolden, DevTextToImage) {
  check_case("dev");
}
TEST(Flux2PipelineGolden, DevBatchOfTwoWithAChinesePrompt) {
  check_case("dev_batch2");
}
TEST(Flux2PipelineGolden, DevShortTextLengthCutsTheSystemMessage) {
  check_case("dev_maxlen");
}
TEST(Flux2PipelineGolden, DevEditsOneReference) {
  check_case("dev_edit");
}

TEST(Flux2PipelineGolden, KleinInpaintsWholeTokens) {
  check_case("inpaint");
}
TEST(Flux2PipelineGolden, KleinInpaintsAcrossTokensWithACutSchedule) {
  check_case("inpaint_cut");
}
TEST(Flux2PipelineGolden, BaseInpaintsTwoImagesWithCfg) {
  check_case("inpaint_base");
}
TEST(Flux2PipelineGolden, KleinImg2ImgIsInpaintingEverything) {
  check_case("img2img");
}
TEST(Flux2PipelineGolden, KleinInpaintsALargeImageWithAReference) {
  check_case("inpaint_large");
}

TEST(Flux2PipelineGolden, InpaintSettingsAndRefusals) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  const Flux2Pipeline& klein = pipeline("tiny_klein");
  const io::Image init = io::read_image(kDir / "flux2_inpaint_tiny_diffusers_init_b.png");
  Flux2Request r{.prompt = "x"};
  r.init_image = init;  // 100 x 72: generated at 96 x 64
  const Flux2Settings s = klein.resolve(r);
  EXPECT_EQ(s.mode, Flux2Mode::ImageToImage);
  EXPECT_EQ(s.width, 96);
  EXPECT_EQ(s.height, 64);
  EXPECT_EQ(s.strength, 0.8);
  r.width = 64;
  EXPECT_NE(test::error_of([&] { klein.resolve(r); }).find("init image's size, 96x64"),
            std::string::npos);
  r.width.reset();
  for (const double bad : {0.0, 1.5}) {  // none of the 4 steps left to run; outside [0, 1]
    r.strength = bad;
    EXPECT_NE(test::error_of([&] { klein.resolve(r); }).find("strength"), std::string::npos) << bad;
  }
  Flux2Request no_init{.prompt = "x"};
  no_init.mask = init;
  EXPECT_NE(test::error_of([&] { klein.resolve(no_init); }).find("a mask needs an init image"),
            std::string::npos);
  ZF_REQUIRE_ASSET(mistral_tokenizer() / "vocab.json");
  Flux2Request dev{.prompt = "x"};
  dev.init_image = init;
  EXPECT_NE(test::error_of([&] { pipeline("tiny_dev").resolve(dev); }).find("FLUX.2-dev takes no"),
            std::string::npos);
}

TEST(Flux2PipelineGolden, DevVariantDefaultsAndRefusals) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  ZF_REQUIRE_ASSET(mistral_tokenizer() / "vocab.json");
  const Flux2Pipeline& dev = pipeline("tiny_dev");
  EXPECT_EQ(dev.variant(), Flux2Variant::Dev);
  const Flux2Settings s = dev.resolve({.prompt = "x"});
  EXPECT_EQ(s.steps, 50);
  EXPECT_FALSE(s.cfg);
  EXPECT_EQ(s.guidance, 4.0f);
  EXPECT_NE(
      test::error_of([&] { dev.resolve({.prompt = "x", .cfg_scale = 3.0f}); }).find("set guidance"),
      std::string::npos);
  EXPECT_NE(test::error_of([&] {
              pipeline("tiny_klein").resolve({.prompt = "x", .guidance = 3.0f});
            }).find("no guidance input"),
            std::string::npos);
  // Klein's tokenizer or text encoder with dev's transformer, and the other way round.
  EXPECT_NE(test::error_of([] {
              Flux2Pipeline::load({.model_dir = kDir / "tiny_dev", .tokenizer = tokenizer()});
            }).find("Mistral-Small tokenizer"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              Flux2Pipeline::load({.model_dir = kDir / "tiny_klein",
                                   .text_encoder = kDir / "tiny_dev" / "text_encoder",
                                   .tokenizer = tokenizer()});
            }).find("is a Mistral model"),
            std::string::npos);
}

// Requests that share forwards (a server joining its clients' jobs) must each get exactly the
// images they get alone: other prompts, seeds and batch sizes, with and without CFG.
TEST(Flux2PipelineGolden, RequestsRunTogetherAsTheyRunAlone) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  ZF_REQUIRE_ASSET(mistral_tokenizer() / "vocab.json");
  for (const char* name : {"klein", "base", "dev"}) {
    const Flux2Pipeline& pipe = pipeline(find_case(name)["model"]);
    const Flux2Request a = request_for(find_case(name));
    Flux2Request b = a, c = a;
    b.prompt = "a lighthouse on a cliff at dusk";
    if (a.cfg_scale) b.negative_prompt = "oversaturated";
    b.seed = a.seed + 5;
    b.batch = 2;
    c.seed = 11;
    test::expect_together_as_alone(pipe, std::vector<Flux2Request>{a, b, c}, name);
  }
  const Flux2Pipeline& klein = pipeline("tiny_klein");
  const Flux2Request a = request_for(find_case("klein"));
  Flux2Request other = a;
  other.steps = *a.steps + 1;
  EXPECT_FALSE(klein.can_share_forwards(a, other));
}

TEST(Flux2PipelineGolden, BadRequestsAndComponentsAreNamed) {
  ZF_REQUIRE_ASSET(tokenizer() / "tokenizer.json");
  const Flux2Pipeline& klein = pipeline("tiny_klein");
  auto error = [&](const Flux2Request& r) { return test::error_of([&] { klein.resolve(r); }); };
  EXPECT_NE(error({.prompt = "x", .width = 40}).find("16"), std::string::npos);
  EXPECT_NE(error({.prompt = "x", .negative_prompt = "blurry"}).find("cfg_scale"),
            std::string::npos);
  EXPECT_NE(error({.prompt = "x", .steps = 0}).find("steps"), std::string::npos);
  Flux2Request with_image{.prompt = "x"};
  with_image.init_image = io::Image{8, 8, std::vector<uint8_t>(8 * 8 * 3)};
  EXPECT_NE(error(with_image).find("smaller than one 16-pixel latent token"), std::string::npos);
  // FLUX.1's folder is not klein's, and FLUX.1's VAE has no BatchNorm statistics.
  EXPECT_NE(test::error_of([] {
              Flux2Pipeline::load({.model_dir = test::fixture("flux_pipeline/tiny_dev")});
            }).find("Flux2KleinPipeline"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              Flux2Pipeline::load({.model_dir = kDir / "tiny_klein",
                                   .tokenizer = tokenizer(),
                                   .vae = test::fixture("flux_pipeline/tiny_dev/vae")});
            }).find("bn.running_mean"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
