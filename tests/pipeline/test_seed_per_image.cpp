// A1111's batches (pipeline/seed_per_image.h) through the generator every caller uses, from their
// definition: image k of a batch is exactly the one-image request with seed + k (with a variation
// seed: the seed kept and variation seed + k, as A1111's processing.py counts all_subseeds), made
// in one batched run where the images share forwards and one after another where they cannot
// (inpainting), progress counted over all of it, the hires fix batching both its passes; the record
// gives each image its own seed and its place in the batch, as A1111's infotext does. Images with
// prompts of their own (Dynamic Prompts' random mode) are each the one-image request with its
// prompts, in both passes of the hires fix.
#include "pipeline/seed_per_image.h"

#include <gtest/gtest.h>

#include "inpaint_fixture.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

GenerationRequest batch_of_three() {
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  r.width = r.height = 32;
  r.steps = 3;
  r.seed = 40;
  r.batch = 3;
  r.seed_per_image = true;
  return r;
}

TEST(SeedPerImage, ImageKIsSeedPlusKAlone) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  GenerationRequest r = batch_of_three();
  r.variation = VariationSeed{7, 0.3f};
  std::vector<int> steps;
  RunControl control;
  control.on_step = [&](const StepProgress& p) {
    steps.push_back(p.step);
    EXPECT_EQ(p.steps, 3) << "the three images in one batched run";
  };
  const std::vector<io::Image> images = tiny_zimage().generate(r, control);
  ASSERT_EQ(images.size(), 3u);
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3}));
  for (int k = 0; k < 3; ++k) {
    GenerationRequest alone = r;
    alone.seed_per_image = false;
    alone.batch = 1;
    alone.variation->seed = 7 + static_cast<uint64_t>(k);
    EXPECT_EQ(images[static_cast<size_t>(k)].rgb, tiny_zimage().generate(alone, {}).front().rgb)
        << "image " << k;
  }
  GenerationRequest one_draw = r;
  one_draw.seed_per_image = false;  // diffusers' batch: one generator for all three
  EXPECT_NE(tiny_zimage().generate(one_draw, {})[1].rgb, images[1].rgb);

  const ImageRecord record = tiny_zimage().record(r, {}, 2);
  EXPECT_NE(record.parameters.find("Seed: 40,"), std::string::npos) << record.parameters;
  EXPECT_NE(record.parameters.find("Variation seed: 9,"), std::string::npos) << record.parameters;
  EXPECT_TRUE(record.parameters.ends_with(", Batch size: 3, Batch pos: 2")) << record.parameters;
  EXPECT_EQ(record.request["seed"], 40);
  // Without a variation seed the seed is counted.
  GenerationRequest plain = r;
  plain.variation.reset();
  EXPECT_EQ(tiny_zimage().record(plain, {}, 2).request["seed"], 42);
  EXPECT_EQ(image_request(plain, 2).seed, 42u);
  EXPECT_EQ(record.request["batch_index"], 2);
  EXPECT_EQ(tiny_zimage().resolve(r).steps_run, 3);
}

// Inpainting's images cannot share forwards (each mask blends into every step): they run one
// after another.
TEST(SeedPerImage, ImagesThatCannotShareRunOneAfterAnother) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto [picture, mask] = picture_and_mask();
  GenerationRequest r = inpaint_request(picture, mask);
  r.batch = 2;
  r.seed_per_image = true;
  std::vector<int> steps;
  RunControl control;
  control.on_step = [&](const StepProgress& p) {
    steps.push_back(p.step);
    EXPECT_EQ(p.steps, 2 * 3) << "each image: img2img's 3 - int(3 - 3 * 0.7) steps of 3";
  };
  const std::vector<io::Image> images = tiny_zimage().generate(r, control);
  ASSERT_EQ(images.size(), 2u);
  EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(tiny_zimage().resolve(r).steps_run, 6);
  EXPECT_EQ(images[1].rgb, tiny_zimage().generate(image_request(r, 1), {}).front().rgb);
}

// The hires fix keeps its passes batched: the first pass's images from seed + k in one run, then
// the second passes (seed + k too) in another; image k is the one-image request with seed + k.
TEST(SeedPerImage, HiresFixBatchesBothPasses) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  GenerationRequest r = batch_of_three();
  r.batch = 2;
  r.hires = HiresFix{.scale = 1.5, .strength = 0.5};
  // With a pixel upscaler and with A1111's default latent one (the latents handed over batched).
  for (const auto latent :
       {std::optional<LatentUpscale>{}, std::optional{LatentUpscale::Bilinear}}) {
    SCOPED_TRACE(latent ? "latent" : "pixels");
    r.hires->latent_upscaler = latent;
    std::vector<int> steps;
    RunControl control;
    control.on_step = [&](const StepProgress& p) {
      steps.push_back(p.step);
      EXPECT_EQ(p.steps, 3 + 2) << "3 first steps, then img2img's 3 - int(3 - 3 * 0.5)";
    };
    const std::vector<io::Image> images = tiny_zimage().generate(r, control);
    ASSERT_EQ(images.size(), 2u);
    EXPECT_EQ(steps, (std::vector<int>{1, 2, 3, 4, 5}));
    const GenerationRequest second = image_request(r, 1);
    EXPECT_EQ(second.seed, 41u);
    EXPECT_EQ(images[1].rgb, tiny_zimage().generate(second, {}).front().rgb);
  }
  const ImageRecord record = tiny_zimage().record(r, {}, 1);
  EXPECT_NE(record.parameters.find("Seed: 41,"), std::string::npos) << record.parameters;
  EXPECT_EQ(record.request["hires"]["seed"], 41);
}

TEST(SeedPerImage, ImagesWithPromptsOfTheirOwn) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  GenerationRequest r = batch_of_three();
  r.batch = 2;
  r.cfg_scale = 2.0f;
  r.image_prompts = {"a red fox in the snow", "a grey wolf at dusk"};
  r.image_negative_prompts = {"blurry", "dark"};
  r.hires = HiresFix{.scale = 1.5, .strength = 0.5};
  for (const bool hires : {false, true}) {
    SCOPED_TRACE(hires ? "hires" : "one pass");
    GenerationRequest run = r;
    if (!hires) run.hires.reset();
    const std::vector<io::Image> images = tiny_zimage().generate(run, {});
    ASSERT_EQ(images.size(), 2u);
    for (int k = 0; k < 2; ++k) {
      GenerationRequest alone = run;
      alone.image_prompts.clear();
      alone.image_negative_prompts.clear();
      alone.seed_per_image = false;
      alone.batch = 1;
      alone.seed = r.seed + static_cast<uint64_t>(k);
      alone.prompt = r.image_prompts[static_cast<size_t>(k)];
      alone.negative_prompt = r.image_negative_prompts[static_cast<size_t>(k)];
      EXPECT_EQ(images[static_cast<size_t>(k)].rgb, tiny_zimage().generate(alone, {}).front().rgb)
          << "image " << k;
    }
    const ImageRecord record = tiny_zimage().record(run, {}, 1);
    EXPECT_TRUE(record.parameters.starts_with("a grey wolf at dusk\nNegative prompt: dark\n"))
        << record.parameters;
    EXPECT_EQ(record.request["prompt"], "a grey wolf at dusk");
  }
  // One prompt each, and only with seeds per image.
  GenerationRequest short_list = r;
  short_list.image_prompts.pop_back();
  EXPECT_NE(test::error_of([&] {
              tiny_zimage().resolve(short_list);
            }).find("image_prompts: 1 prompts for a batch of 2"),
            std::string::npos);
  GenerationRequest one_draw = r;
  one_draw.seed_per_image = false;
  EXPECT_NE(test::error_of([&] {
              tiny_zimage().resolve(one_draw);
            }).find("image_prompts: prompts of each image's own need seeds per image"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow::pipeline
