// The tiny Z-Image and FLUX.1 pipelines (tests/fixtures/{zimage,flux}_pipeline) with their text
// encoders, transformer and VAE on the GPU in bf16, against the same pipeline on the CPU in
// float32. Skipped without a CUDA device (and without the shared tokenizers: on the GPU machine
// scripts/gpu-check points $ZFLOW_SHARED_ASSETS at the bundle's copy).
// Tolerance: PSNR >= 30 dB (RMS error 8 levels of 255). bf16 activations perturb the latents by
// ~0.5% per step; over 8 (Turbo) or 4 CFG steps of the random tiny model and its VAE this
// moves pixels by a few levels, while any real mistake (wrong caption rows, mask, padding,
// schedule, CFG) gives 15-25 dB, as the CPU goldens' notes measure for the same fixtures.
#include <gtest/gtest.h>

#include <cstdio>

#include "backend/cuda_test_util.h"
#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/flux2_pipeline.h"
#include "pipeline/flux_pipeline.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"
#include "zimage_golden.h"

namespace zflow::pipeline {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = test::fixture("zimage_pipeline");
constexpr double kMinPsnr = 30.0;

ZImagePipeline load_tiny(const models::Placement& placement) {
  return ZImagePipeline::load(
      {.model_dir = kDir / "tiny", .tokenizer = test::shared_asset("qwen3_tokenizer")}, placement);
}

template <class Pipeline, class Request>
void expect_gpu_matches_cpu(const Pipeline& gpu, const Pipeline& cpu, const Request& request,
                            const std::string& what) {
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

const fs::path kFluxDir = test::fixture("flux_pipeline");

FluxPipeline load_tiny_flux(const models::Placement& placement) {
  const fs::path tokenizers = test::shared_asset("flux1_tokenizer");
  return FluxPipeline::load({.model_dir = kFluxDir / "tiny_dev",
                             .clip_tokenizer = tokenizers / "tokenizer_clip_l",
                             .t5_tokenizer = tokenizers / "tokenizer_t5"},
                            placement);
}

TEST(CudaPipeline, FluxTinyMatchesTheCpu) {
  ZF_REQUIRE_GPU();
  ZF_REQUIRE_ASSET(test::shared_asset("flux1_tokenizer/tokenizer_t5/spiece.model"));
  ZF_REQUIRE_ASSET(test::shared_asset("flux1_tokenizer/tokenizer_clip_l/vocab.json"));
  const FluxPipeline cpu = load_tiny_flux(models::Placement::cpu());
  const FluxPipeline gpu = load_tiny_flux(models::Placement::cuda());

  FluxRequest dev;  // text to image with embedded guidance, non-square
  dev.prompt = "a lighthouse at dusk";
  dev.width = 64;
  dev.height = 48;
  dev.steps = 4;
  dev.seed = 3;
  expect_gpu_matches_cpu(gpu, cpu, dev, "flux dev 64x48");

  FluxRequest cfg = dev;  // true CFG against a negative prompt, batch of two
  cfg.negative_prompt = "fog";
  cfg.true_cfg_scale = 2.0f;
  cfg.batch = 2;
  expect_gpu_matches_cpu(gpu, cpu, cfg, "flux true cfg batch 2");

  FluxRequest inpaint = dev;  // the VAE encoder and the mask blend too
  inpaint.init_image = io::read_image(kFluxDir / "flux_tiny_diffusers_init.png");
  inpaint.mask = io::read_image(kFluxDir / "flux_tiny_diffusers_mask.png");
  inpaint.width.reset();
  inpaint.height.reset();
  inpaint.strength = 0.7;
  expect_gpu_matches_cpu(gpu, cpu, inpaint, "flux inpaint");
}

// FLUX.2 klein's tiny model has a steep text path (make_flux2_pipeline.py), so bf16 activations
// alone move its images to ~33 dB: it runs the GPU in float32 against diffusers' own images with
// the CPU goldens' 40 dB, which every text-side mistake falls far below.
TEST(CudaPipeline, Flux2KleinTinyInFloat32MatchesDiffusers) {
  ZF_REQUIRE_GPU();
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const fs::path dir = test::fixture("flux2_pipeline");
  for (const char* model : {"tiny_klein", "tiny_klein_base"}) {
    const Flux2Pipeline gpu = Flux2Pipeline::load(
        {.model_dir = dir / model, .tokenizer = test::shared_asset("qwen3_tokenizer")},
        models::Placement::cuda(DType::F32));
    Flux2Request r;  // the golden cases "klein" and "base"
    r.prompt = "a red fox sitting in fresh snow, morning light";
    r.width = 64;
    r.height = 48;
    r.steps = 3;
    r.seed = std::string(model) == "tiny_klein" ? 42 : 5;
    const std::vector<io::Image> got = gpu.generate(r);
    const std::string want = std::string("flux2_tiny_diffusers_") +
                             (std::string(model) == "tiny_klein" ? "klein" : "base") + "_0.png";
    ASSERT_EQ(got.size(), 1u);
    const double db = test::psnr(got[0], io::read_image(dir / want));
    std::printf("  %s: PSNR %.1f dB against diffusers\n", model, db);
    EXPECT_GE(db, 40.0) << model;
  }
}

// Z-Image Omni (condition image, SigLIP 2, per-token modulation) and FLUX.2 klein KV (its
// reference cache) on the GPU in float32 against diffusers' images: the golden cases "edit" and
// "kv_edit", at the CPU goldens' 40 dB (their quirks and the plain-klein handling measure less).
TEST(CudaPipeline, ZImageOmniAndKleinKvInFloat32MatchDiffusers) {
  ZF_REQUIRE_GPU();
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const fs::path omni = test::fixture("zimage_omni");
  const ZImagePipeline zimage =
      ZImagePipeline::load({.model_dir = omni / "tiny_omni",
                            .text_encoder = kDir / "tiny" / "text_encoder",
                            .vae = kDir / "tiny" / "vae",
                            .tokenizer = test::shared_asset("qwen3_tokenizer")},
                           models::Placement::cuda(DType::F32));
  ZImageRequest z;
  z.prompt = "make the disc a blue moon over the snow";
  z.references = {io::read_image(omni / "zimage_omni_tiny_a.png")};
  z.steps = 3;
  z.guidance = 0.0f;
  z.seed = 4;
  const double omni_db =
      test::psnr(zimage.generate(z).at(0), io::read_image(omni / "zimage_omni_tiny_edit_0.png"));
  std::printf("  z-image omni: PSNR %.1f dB against diffusers\n", omni_db);
  EXPECT_GE(omni_db, 40.0);

  const fs::path dir = test::fixture("flux2_pipeline");
  const fs::path klein = dir / "tiny_klein";
  const Flux2Pipeline kv = Flux2Pipeline::load({.model_dir = dir / "tiny_klein_kv",
                                                .diffusion_model = klein / "transformer",
                                                .text_encoder = klein / "text_encoder",
                                                .tokenizer = test::shared_asset("qwen3_tokenizer"),
                                                .vae = klein / "vae"},
                                               models::Placement::cuda(DType::F32));
  Flux2Request f;
  f.prompt = "a red fox sitting in fresh snow, morning light";
  f.references = {io::read_image(dir / "flux2_tiny_diffusers_ref_a.png")};
  f.steps = 3;
  f.seed = 41;
  const double kv_db = test::psnr(kv.generate(f).at(0),
                                  io::read_image(dir / "flux2_kv_tiny_diffusers_kv_edit_0.png"));
  std::printf("  flux.2 klein kv: PSNR %.1f dB against diffusers\n", kv_db);
  EXPECT_GE(kv_db, 40.0);
}

// The other samplers and First Block Cache on the GPU in float32 (the cache's statistic comes
// back to the host every step): the golden cases "zimage_heun_karras_cfg" (Heun over Karras
// sigmas with CFG) and "zimage_cfg" (7 of 10 calls skipped), at the CPU goldens' 40 dB.
TEST(CudaPipeline, SamplersAndFirstBlockCacheInFloat32MatchDiffusers) {
  ZF_REQUIRE_GPU();
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const fs::path cache_dir = test::fixture("first_block_cache");
  const ZImagePipeline pipe =
      ZImagePipeline::load({.model_dir = kDir / "tiny",
                            .diffusion_model = cache_dir / "zimage_transformer",
                            .tokenizer = test::shared_asset("qwen3_tokenizer")},
                           models::Placement::cuda(DType::F32));
  const test::GoldenCases cache_cases(cache_dir / "first_block_cache_cases.json");
  const nlohmann::json& c = cache_cases.find("zimage_cfg");
  ZImageRequest r = test::zimage_txt2img_request(c, cache_cases.normal_math());
  r.first_block_cache = c["threshold"].get<float>();
  const double cache_db = test::psnr(
      pipe.generate(r).at(0), io::read_image(cache_dir / c["expected"][0].get<std::string>()));
  std::printf("  first-block cache: PSNR %.1f dB against diffusers\n", cache_db);
  EXPECT_GE(cache_db, 40.0);

  const fs::path sampler_dir = test::fixture("sampler_pipeline");
  const test::GoldenCases sampler_cases(sampler_dir / "sampler_pipeline_cases.json");
  const nlohmann::json& h = sampler_cases.find("zimage_heun_karras_cfg");
  ZImageRequest heun = test::zimage_txt2img_request(h, sampler_cases.normal_math());
  heun.sampling = {FlowSampler::kHeun, SigmaSchedule::kKarras};
  const ZImagePipeline tiny = load_tiny(models::Placement::cuda(DType::F32));
  const double heun_db = test::psnr(
      tiny.generate(heun).at(0), io::read_image(sampler_dir / h["expected"][0].get<std::string>()));
  std::printf("  heun, karras: PSNR %.1f dB against diffusers\n", heun_db);
  EXPECT_GE(heun_db, 40.0);
}

// FLUX.2-dev's left-padded Mistral prompt and embedded guidance on the GPU: the golden case "dev".
TEST(CudaPipeline, Flux2DevTinyInFloat32MatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const fs::path mistral = test::shared_asset("flux2_mistral_tokenizer");
  ZF_REQUIRE_ASSET(mistral / "vocab.json");
  const fs::path dir = test::fixture("flux2_pipeline");
  const Flux2Pipeline gpu = Flux2Pipeline::load(
      {.model_dir = dir / "tiny_dev", .tokenizer = mistral}, models::Placement::cuda(DType::F32));
  const std::vector<io::Image> got =
      gpu.generate({.prompt = "a red fox sitting in fresh snow, morning light",
                    .width = 64,
                    .height = 48,
                    .steps = 3,
                    .guidance = 4.0f,
                    .seed = 42});
  ASSERT_EQ(got.size(), 1u);
  const double db = test::psnr(got[0], io::read_image(dir / "flux2_dev_tiny_diffusers_dev_0.png"));
  std::printf("  tiny_dev: PSNR %.1f dB against diffusers\n", db);
  EXPECT_GE(db, 40.0);
}

}  // namespace
}  // namespace zflow::pipeline
