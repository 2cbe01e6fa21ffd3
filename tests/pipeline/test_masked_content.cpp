// A1111's "Masked content" (pipeline/masked_content.h). The fill is compared byte for byte with
// A1111's masking.fill run by Pillow 13 (tools/golden/make_masked_content.py): soft-edged masks, a
// blurred one, a mask covering everything and a 7x5 random picture under a random coloured mask
// (every blur wider than it). The latent modes are checked from their definition, and through the
// start latents and the generators against what each mode means.
#include "pipeline/masked_content.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "inpaint_fixture.h"
#include "io/image_resize.h"
#include "models/autoencoder_kl.h"
#include "pipeline/generator.h"
#include "pipeline/mask_crop.h"
#include "pipeline/start_latents.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

const std::filesystem::path kDir = test::fixture("masked_content");

TEST(MaskedContent, FillIsA1111s) {
  std::ifstream in(kDir / "masked_content_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases["fills"].size(), 6u);
  for (const auto& c : cases["fills"]) {
    SCOPED_TRACE(c["expected"].get<std::string>());
    const io::Image got = fill_masked_area(io::read_image(kDir / c["picture"].get<std::string>()),
                                           io::read_image(kDir / c["mask"].get<std::string>()));
    const io::Image want = io::read_image(kDir / c["expected"].get<std::string>());
    ASSERT_EQ(got.rgb.size(), want.rgb.size());
    int differing = 0;
    for (size_t i = 0; i < got.rgb.size(); ++i) differing += got.rgb[i] != want.rgb[i];
    EXPECT_EQ(differing, 0);
  }
}

TEST(MaskedContent, FillNeedsAMaskOfThePicturesSize) {
  const io::Image picture{4, 2, std::vector<uint8_t>(24, 7)};
  const io::Image mask{2, 4, std::vector<uint8_t>(24, 255)};
  try {
    fill_masked_area(picture, mask);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the mask is 2x4 but the picture 4x2"), std::string::npos)
        << e.what();
  }
}

TEST(MaskedContent, NamesAreA1111s) {
  for (const auto content : {MaskedContent::Original, MaskedContent::Fill,
                             MaskedContent::LatentNoise, MaskedContent::LatentNothing})
    EXPECT_EQ(parse_masked_content(masked_content_name(content)), content);
  EXPECT_EQ(masked_content_name(MaskedContent::LatentNoise), "latent noise");
  EXPECT_EQ(parse_masked_content("latent-nothing"), MaskedContent::LatentNothing);
  EXPECT_EQ(parse_masked_content("latent_noise"), MaskedContent::LatentNoise);
  EXPECT_EQ(parse_masked_content("noise"), std::nullopt);
  EXPECT_EQ(parse_masked_content(""), std::nullopt);
}

// [2, 3, 2, 2] latents: where the [1, 1, 2, 2] mask is 1 the noise (latent noise) or 0 (latent
// nothing), elsewhere the image's latents; the other modes leave them as they are.
TEST(MaskedContent, LatentModesReplaceTheMaskedCells) {
  const Shape shape{2, 3, 2, 2};
  Tensor z = Tensor::zeros(shape, DType::F32), noise = Tensor::zeros(shape, DType::F32);
  for (int64_t i = 0; i < z.numel(); ++i) {
    z.data<float>()[i] = 1.0f + static_cast<float>(i);
    noise.data<float>()[i] = -0.5f - static_cast<float>(i);
  }
  Tensor mask = Tensor::zeros({1, 1, 2, 2}, DType::F32);
  const float cells[] = {1, 0, 0, 1};
  std::copy(std::begin(cells), std::end(cells), mask.data<float>());
  const Tensor noisy = latents_with_masked_content(z, noise, mask, MaskedContent::LatentNoise);
  const Tensor nothing = latents_with_masked_content(z, noise, mask, MaskedContent::LatentNothing);
  for (int64_t i = 0; i < z.numel(); ++i) {
    const bool masked = cells[i % 4] == 1.0f;
    EXPECT_EQ(noisy.data<float>()[i], masked ? noise.data<float>()[i] : z.data<float>()[i]) << i;
    EXPECT_EQ(nothing.data<float>()[i], masked ? 0.0f : z.data<float>()[i]) << i;
  }
  for (const auto content : {MaskedContent::Original, MaskedContent::Fill}) {
    const Tensor same = latents_with_masked_content(z, noise, mask, content);
    for (int64_t i = 0; i < z.numel(); ++i) EXPECT_EQ(same.data<float>()[i], z.data<float>()[i]);
  }
}

// Start latents with the same seed under each mode: outside the mask every mode starts as the
// original does; inside, latent noise starts from the noise itself (sigma n + (1 - sigma) n) and
// latent nothing from sigma n; the blend keeps the image's latents.
TEST(MaskedContent, StartLatentsOfTheLatentModes) {
  const models::AutoencoderKL vae =
      models::load_autoencoder_kl(test::fixture("zimage_pipeline/tiny/vae"));
  const auto [picture, mask] = picture_and_mask();
  const int64_t side = 32 >> (vae.config().levels() - 1);  // 32 pixels in latent cells
  const Shape shape{2, vae.config().latent_channels, side, side};
  constexpr float kSigma = 0.6f;
  auto start = [&](MaskedContent content) {
    Generator generator(11);
    return start_latents(vae, generator, shape, kSigma,
                         {.init = &picture, .mask = &mask, .content = content});
  };
  const StartLatents original = start(MaskedContent::Original);
  ASSERT_TRUE(original.inpaint);
  const Tensor& m = original.inpaint->mask;
  const Tensor& noise = original.inpaint->noise;
  const int64_t cells = shape[2] * shape[3];
  int masked_cells = 0;
  for (int64_t i = 0; i < cells; ++i) masked_cells += m.data<float>()[i] == 1.0f;
  ASSERT_EQ(masked_cells, cells / 4);  // the top-left quarter
  for (const auto content : {MaskedContent::LatentNoise, MaskedContent::LatentNothing}) {
    SCOPED_TRACE(std::string(masked_content_name(content)));
    const StartLatents got = start(content);
    ASSERT_TRUE(got.inpaint);
    for (int64_t i = 0; i < original.latents.numel(); ++i) {
      const float n = noise.data<float>()[i],
                  want_masked = content == MaskedContent::LatentNoise ? n : kSigma * n;
      const bool masked = m.data<float>()[i % cells] == 1.0f;
      EXPECT_NEAR(got.latents.data<float>()[i],
                  masked ? want_masked : original.latents.data<float>()[i], 1e-6f)
          << i;
      EXPECT_EQ(got.inpaint->image_latents.data<float>()[i],
                original.inpaint->image_latents.data<float>()[i]);
    }
  }
}

// Through the generator: the fill modes inpaint the filled picture, exactly as a request sending
// the filled picture itself; the record names the mode as A1111's infotext does.
TEST(MaskedContent, GeneratorFillsBeforeInpainting) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const ImageGenerator* gen = &tiny_zimage();
  const auto [picture, mask] = picture_and_mask();
  GenerationRequest r = inpaint_request(picture, mask);
  r.masked_content = MaskedContent::Fill;
  const std::vector<io::Image> filled = gen->generate(r, {});
  GenerationRequest by_hand = r;
  by_hand.init_image = fill_masked_area(picture, mask);
  by_hand.masked_content = MaskedContent::Original;
  EXPECT_EQ(filled.front().rgb, gen->generate(by_hand, {}).front().rgb);
  r.masked_content = MaskedContent::Original;
  EXPECT_NE(filled.front().rgb, gen->generate(r, {}).front().rgb);

  r.masked_content = MaskedContent::LatentNothing;
  const ImageRecord rec = gen->record(r, {}, 0);
  EXPECT_NE(rec.parameters.find(", Masked content: latent nothing"), std::string::npos)
      << rec.parameters;
  EXPECT_EQ(rec.request.at("masked_content"), "latent nothing");
}

// An inverted mask (A1111's "Inpaint not masked") repaints what the mask leaves black: exactly a
// request whose mask is 255 - grey, filled there too; the record says so with A1111's key.
TEST(MaskedContent, InvertedMaskRepaintsTheUnmaskedPart) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto [picture, mask] = picture_and_mask();
  GenerationRequest r = inpaint_request(picture, mask);
  r.masked_content = MaskedContent::Fill;
  r.invert_mask = true;
  GenerationRequest by_hand = r;
  by_hand.invert_mask = false;
  for (uint8_t& v : by_hand.mask->rgb) v = static_cast<uint8_t>(255 - v);  // grey: luma = v
  EXPECT_EQ(tiny_zimage().generate(r, {}).front().rgb,
            tiny_zimage().generate(by_hand, {}).front().rgb);
  const ImageRecord rec = tiny_zimage().record(r, {}, 0);
  EXPECT_NE(rec.parameters.find(", Mask mode: Inpaint not masked"), std::string::npos)
      << rec.parameters;
  EXPECT_EQ(rec.request.at("invert_mask"), true);
}

// A picture of another aspect ratio with its mask, cropped or filled to the output size (A1111's
// resize modes 1 and 2): exactly a request sending both already brought there by resize_to
// (diffusers' resize modes, test_mask_crop.cpp).
TEST(MaskedContent, ResizeModesBringThePictureAndMaskToTheSize) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto [square, square_mask] = picture_and_mask();
  const io::Image picture = io::resize_image(square, 48, 32, io::ResampleFilter::Lanczos);
  const io::Image mask = io::resize_image(square_mask, 48, 32, io::ResampleFilter::Lanczos);
  for (const ResizeMode mode : {ResizeMode::Crop, ResizeMode::Fill}) {
    GenerationRequest r = inpaint_request(picture, mask);
    r.width = r.height = 32;
    r.resize_mode = mode;
    GenerationRequest by_hand = r;
    by_hand.resize_mode = ResizeMode::Stretch;
    by_hand.init_image = resize_to(picture, 32, 32, mode);
    by_hand.mask = resize_to(mask, 32, 32, mode);
    const io::Image got = tiny_zimage().generate(r, {}).front();
    EXPECT_EQ(got.rgb, tiny_zimage().generate(by_hand, {}).front().rgb);
    by_hand.init_image = picture;  // stretched instead
    by_hand.mask = mask;
    EXPECT_NE(got.rgb, tiny_zimage().generate(by_hand, {}).front().rgb);
  }
}

}  // namespace
}  // namespace zflow::pipeline
