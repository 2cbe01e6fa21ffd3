// The tiny Z-Image pipeline (tests/fixtures/zimage_pipeline) with its text encoder,
// transformer and VAE on the GPU in bf16, against the same pipeline on the CPU in float32.
// Skipped without a CUDA device (and without the shared Qwen3 tokenizer: on the GPU machine
// scripts/gpu-check points $ZFLOW_SHARED_ASSETS at the bundle's copy).
// Tolerance: PSNR >= 30 dB (RMS error 8 levels of 255). bf16 activations perturb the latents by
// ~0.5% per step; over 8 (Turbo) or 4 CFG steps of the random tiny model and its VAE this
// moves pixels by a few levels, while any real mistake (wrong caption rows, mask, padding,
// schedule, CFG) gives 15-25 dB, as the CPU goldens' notes measure for the same fixture.
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/cuda_test_util.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("zimage_pipeline");
constexpr double kMinPsnr = 30.0;

ZImagePipeline load_tiny(const models::Placement& placement) {
  return ZImagePipeline::load(
      {.model_dir = kDir / "tiny", .tokenizer = test::shared_asset("qwen3_tokenizer")}, placement);
}

void expect_gpu_matches_cpu(const ZImagePipeline& gpu, const ZImagePipeline& cpu,
                            const ZImageRequest& request, const std::string& what) {
  const std::vector<io::Image> want = cpu.generate(request);
  const std::vector<io::Image> got = gpu.generate(request);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t k = 0; k < got.size(); ++k) {
    ASSERT_EQ(got[k].width, want[k].width) << what;
    ASSERT_EQ(got[k].height, want[k].height) << what;
    const double db = test::psnr(got[k], want[k]);
    std::printf("  %s[%zu]: PSNR %.1f dB against the CPU\n", what.c_str(), k, db);
    EXPECT_GE(db, kMinPsnr) << what << " image " << k;
  }
}

TEST(CudaPipeline, ZImageTinyMatchesTheCpu) {
  ZF_REQUIRE_GPU();
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const ZImagePipeline cpu = load_tiny(models::Placement::cpu());
  const ZImagePipeline gpu = load_tiny(models::Placement::cuda());

  ZImageRequest turbo;  // text to image, the tiny folder's Turbo defaults, non-square
  turbo.prompt = "a red fox in the snow";
  turbo.width = 64;
  turbo.height = 48;
  turbo.seed = 7;
  expect_gpu_matches_cpu(gpu, cpu, turbo, "turbo 64x48");

  ZImageRequest cfg = turbo;  // CFG with a negative prompt, batch of two (one batched forward)
  cfg.negative_prompt = "blurry";
  cfg.guidance = 3.0f;
  cfg.steps = 4;
  cfg.batch = 2;
  expect_gpu_matches_cpu(gpu, cpu, cfg, "cfg batch 2");

  ZImageRequest img2img = turbo;  // the VAE encoder too
  img2img.init_image = io::read_image(kDir / "zimage_tiny_diffusers_init.png");
  img2img.width.reset();
  img2img.height.reset();
  img2img.strength = 0.6;
  expect_gpu_matches_cpu(gpu, cpu, img2img, "img2img");
}

}  // namespace
}  // namespace zflow::pipeline
