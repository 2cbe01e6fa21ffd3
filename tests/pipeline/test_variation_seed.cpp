// A1111's variation seed from first principles: its slerp keeps low at strength 0, gives high at
// 1, and halfway between two orthogonal unit columns lands on their normalised sum; each (c, x)
// column along h is its own pair (its scale does not matter); two equal noises take A1111's
// linear fall-back. Through the generators of all three families (Z-Image and FLUX.1 draw their
// noise in start_latents, FLUX.2 on its own): strength 1 makes exactly the picture of the
// variation seed alone, a small strength a picture near the seed's and far from the other's, and
// the PNG records A1111's keys.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "image_psnr.h"
#include "pipeline/generator.h"
#include "pipeline/variation_seed.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

TEST(VariationSlerp, EndsMiddleAndColumns) {
  // Two images [1, 1, 2, 2] each: column x = 0 is (1, 0) against (0, 1), column x = 1 is
  // (0, 3) against (-2, 0) (orthogonal, other lengths).
  const Tensor low = Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{1, 0, 0, 3});
  const Tensor high = Tensor::from_f32({1, 1, 2, 2}, std::vector<float>{0, -2, 1, 0});
  EXPECT_EQ(variation_slerp(0.0f, low, high).to_f32_vector(), low.to_f32_vector());
  EXPECT_EQ(variation_slerp(1.0f, low, high).to_f32_vector(), high.to_f32_vector());
  const std::vector<float> mid = variation_slerp(0.5f, low, high).to_f32_vector();
  const float c = std::sin(std::acos(0.0f) / 2);                  // sin(pi / 4) / sin(pi / 2)
  const std::vector<float> want = {c * 1, c * -2, c * 1, c * 3};  // (row y, column x) order
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(mid[i], want[i], 1e-6f) << i;
  // Equal noises: A1111's linear fall-back, low * t + high * (1 - t) = the noise itself.
  EXPECT_EQ(variation_slerp(0.3f, low, low).to_f32_vector(), low.to_f32_vector());
}

TEST(VariationSlerp, RecordsAndRefusals) {
  EXPECT_EQ(variation_infotext(VariationSeed{9, 0.25f}),
            ", Variation seed: 9, Variation seed strength: 0.25");
  EXPECT_EQ(variation_infotext(VariationSeed{9, 0.0f}), "");
  EXPECT_EQ(variation_json(VariationSeed{9, 0.25f}),
            (nlohmann::json{{"seed", 9}, {"strength", 0.25f}}));
  const Tensor noise = Tensor::zeros({1, 1, 2, 2}, DType::F32);
  EXPECT_NE(test::error_of([&] {
              varied_noise(noise, VariationSeed{1, 1.5f}, NormalMath::Avx2Cephes);
            }).find("strength must be in [0, 1]"),
            std::string::npos);
}

struct Family {
  const char* name;
  ModelFiles files;
  GenerationRequest request;
};

std::vector<Family> families() {
  GenerationRequest r;
  r.prompt = "a red fox in the snow";
  // Columns of 16 latent rows: A1111's slerp normalises each along h, and with the 4 rows of a
  // 32-pixel picture the columns' angles spread too far for "near" to hold.
  r.width = 128;
  r.height = 128;
  r.steps = 2;
  r.seed = 3;
  return {
      {"zimage",
       {.model_dir = test::fixture("zimage_pipeline/tiny"),
        .tokenizer = test::shared_asset("qwen3_tokenizer")},
       r},
      {"flux1",
       {.model_dir = test::fixture("flux_pipeline/tiny_dev"),
        .clip_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_clip_l"),
        .t5_tokenizer = test::shared_asset("flux1_tokenizer/tokenizer_t5")},
       r},
      {"flux2",
       {.model_dir = test::fixture("flux2_pipeline/tiny_klein"),
        .tokenizer = test::shared_asset("qwen3_tokenizer")},
       r},
  };
}

TEST(VariationSeedGenerators, StrengthOneIsTheOtherSeedAndSmallStaysNear) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  ZF_REQUIRE_ASSET(test::shared_asset("flux1_tokenizer/tokenizer_t5/spiece.model"));
  for (const Family& f : families()) {
    SCOPED_TRACE(f.name);
    const auto gen = load_generator(f.files);
    const io::Image base = gen->generate(f.request, {}).front();
    GenerationRequest other = f.request;
    other.seed = 11;
    const io::Image other_image = gen->generate(other, {}).front();
    GenerationRequest full = f.request;
    full.variation = VariationSeed{11, 1.0f};
    EXPECT_EQ(gen->generate(full, {}).front().rgb, other_image.rgb);
    GenerationRequest small = f.request;
    small.variation = VariationSeed{11, 0.1f};
    const io::Image varied = gen->generate(small, {}).front();
    EXPECT_NE(varied.rgb, base.rgb);
    const double near = test::psnr(varied, base), far = test::psnr(varied, other_image);
    std::printf("  %s: strength 0.1 against the seed's picture %.1f dB, the other seed's %.1f dB\n",
                f.name, near, far);
    EXPECT_GT(near, far + 6.0);
    const ImageRecord record = gen->record(small, {}, 0);
    EXPECT_NE(record.parameters.find(", Variation seed: 11, Variation seed strength: 0.1"),
              std::string::npos)
        << record.parameters;
    EXPECT_EQ(record.request.at("variation").at("seed"), 11);
  }
}

}  // namespace
}  // namespace zflow::pipeline
