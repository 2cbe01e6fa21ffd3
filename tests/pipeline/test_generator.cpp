// The family-agnostic ImageGenerator: which family a folder or file is, and the common request
// mapped onto Z-Image (the image itself is checked against diffusers in test_zimage_pipeline).
#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "pipeline/generator.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ImageGenerator, LoadsTheTinyZImageFolderAsZImage) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto gen = load_generator({.model_dir = test::fixture("zimage_pipeline/tiny"),
                                   .tokenizer = test::shared_asset("qwen3_tokenizer")});
  EXPECT_EQ(gen->model_name(), "tiny");
  GenerationRequest r;
  r.prompt = "a cat";
  r.width = 64;
  r.height = 32;
  r.steps = 3;
  r.cfg_scale = 2.0f;
  const GenerationSettings s = gen->resolve(r);
  EXPECT_EQ(s.mode, "txt2img");
  EXPECT_EQ(s.width, 64);
  EXPECT_EQ(s.height, 32);
  EXPECT_EQ(s.steps_run, 3);
  EXPECT_FLOAT_EQ(s.cfg_scale, 2.0f);

  // img2img skips int(steps - steps * strength) steps of the schedule, as diffusers:
  // int(10 - 5.5) = 4 skipped, 6 run.
  r.init_image = io::Image{64, 32, std::vector<uint8_t>(64 * 32 * 3, 128)};
  r.steps = 10;
  r.strength = 0.55;
  EXPECT_EQ(gen->resolve(r).steps_run, 6);
  EXPECT_EQ(gen->resolve(r).mode, "img2img");

  const ImageRecord rec = gen->record(r, {"in.png", ""}, 0);
  EXPECT_EQ(rec.request.at("init_image"), "in.png");
  EXPECT_NE(rec.parameters.find("CFG scale: 2"), std::string::npos) << rec.parameters;

  r.guidance = 3.5f;
  EXPECT_NE(error_of([&] { gen->resolve(r); }).find("guidance: Z-Image has no embedded"),
            std::string::npos);
}

// --offload streams blocks to a GPU: asked with the models on the CPU, loading stops before any
// file is read, naming the flag; with the GPU it turns the placement's streaming on.
TEST(ImageGenerator, OffloadNeedsTheGpu) {
  const std::string error = error_of([] {
    load_generator({.model_dir = test::fixture("zimage_pipeline/tiny"), .offload = true});
  });
  EXPECT_NE(error.find("--offload"), std::string::npos) << error;
  EXPECT_NE(error.find("--device cuda"), std::string::npos) << error;
  const models::Placement p = placement_for({.device = Device::CUDA, .offload = true});
  EXPECT_EQ(p.device, Device::CUDA);
  EXPECT_TRUE(p.offload);
  EXPECT_FALSE(placement_for({.model_dir = "x"}).offload);
}

TEST(ImageGenerator, NamesAnUnknownPipelineClass) {
  const fs::path dir = fs::temp_directory_path() / "zflow_generator_unknown";
  fs::create_directories(dir);
  std::ofstream(dir / "model_index.json") << R"({"_class_name": "StableDiffusionPipeline"})";
  const std::string e = error_of([&] { load_generator({.model_dir = dir}); });
  EXPECT_NE(e.find("'StableDiffusionPipeline' is not one zflow runs"), std::string::npos) << e;
  EXPECT_NE(
      error_of([&] { load_generator({.model_dir = dir / "absent"}); }).find("no model_index.json"),
      std::string::npos);
  EXPECT_NE(error_of([] { load_generator({}); }).find("[model] no model"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace zflow::pipeline
