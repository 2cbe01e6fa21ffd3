// FLUX.2 klein KV against diffusers 0.42.1's Flux2KleinKVPipeline
// (tools/golden/make_flux2_klein_kv.py: the tiny klein model under a Flux2KleinKVPipeline
// model_index.json): one reference (the output takes its size), two cropped references at a
// requested size in a batch of two, and text alone. Each output must match diffusers' uint8 image
// with PSNR >= 40 dB, the FLUX.2 pipelines' bound (float32 on both sides); the same request on
// plain klein, whose references attend to the image and follow its time, misses it (a test).
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/flux2_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("flux2_pipeline");
constexpr double kMinPsnr = 70.0;

const test::GoldenCases& cases() {
  static const test::GoldenCases c(kDir / "flux2_kv_tiny_diffusers_cases.json");
  return c;
}

Flux2Files files(const fs::path& model_dir) {
  const fs::path klein = kDir / "tiny_klein";
  return {.model_dir = model_dir,
          .diffusion_model = klein / "transformer",
          .text_encoder = klein / "text_encoder",
          .tokenizer = test::shared_asset("qwen3_tokenizer"),
          .vae = klein / "vae"};
}

const Flux2Pipeline& kv_pipeline() {
  static const Flux2Pipeline pipe = Flux2Pipeline::load(files(kDir / "tiny_klein_kv"));
  return pipe;
}

Flux2Request request_for(const nlohmann::json& c) {
  Flux2Request r;
  r.prompt = c["prompt"];
  if (c.contains("width")) r.width = c["width"].get<int>();
  if (c.contains("height")) r.height = c["height"].get<int>();
  for (const auto& file : c["references"]) r.references.push_back(io::read_image(kDir / file));
  r.steps = c["steps"].get<int>();
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  r.normal_math = cases().normal_math();
  return r;
}

void check_case(const std::string& name) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const nlohmann::json& c = cases().find(name);
  test::expect_images_match(kv_pipeline().generate(request_for(c)), c["expected"], kDir, kMinPsnr,
                            name);
}

TEST(Flux2KleinKvGolden, EditWithOneReference) {
  check_case("kv_edit");
}
TEST(Flux2KleinKvGolden, TwoReferencesBatchOfTwo) {
  check_case("kv_edit_two");
}
TEST(Flux2KleinKvGolden, TextOnly) {
  check_case("kv_text");
}

TEST(Flux2KleinKvGolden, IsKnownAndDiffersFromKlein) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  EXPECT_EQ(kv_pipeline().variant(), Flux2Variant::KleinKv);
  EXPECT_EQ(kv_pipeline().defaults().steps, 4);
  const nlohmann::json& c = cases().find("kv_edit");
  const Flux2Pipeline klein = Flux2Pipeline::load(files(kDir / "tiny_klein"));
  const io::Image want = io::read_image(kDir / c["expected"][0].get<std::string>());
  EXPECT_LT(test::psnr(klein.generate(request_for(c)).at(0), want), kMinPsnr);
  // No init image: diffusers has no KV inpainting.
  EXPECT_NE(test::error_of([&] {
              Flux2Request r = request_for(c);
              r.init_image = r.references.front();
              kv_pipeline().resolve(r);
            }).find("no init image"),
            std::string::npos);
}

// Without a model_index.json, a diffusion model named as the release ("...-kv") is KV.
TEST(Flux2KleinKvGolden, KnownByName) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const fs::path dir = fs::temp_directory_path() / ("zflow_flux2_kv_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path named = dir / "flux-2-klein-tiny-kv";
  fs::remove(named);
  fs::create_directory_symlink(fs::absolute(kDir / "tiny_klein" / "transformer"), named);
  Flux2Files by_name = files({});
  by_name.diffusion_model = named;
  EXPECT_EQ(Flux2Pipeline::load(by_name).variant(), Flux2Variant::KleinKv);
  by_name.diffusion_model = kDir / "tiny_klein" / "transformer";
  EXPECT_EQ(Flux2Pipeline::load(by_name).variant(), Flux2Variant::Klein);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace zflow::pipeline
