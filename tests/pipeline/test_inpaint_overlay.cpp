// A1111's inpainting overlay and mask rounding (pipeline/mask_crop.h) against A1111's steps
// restated on Pillow 13 (tools/golden/make_inpaint_overlay.py), byte for byte: soft and rounded
// masks, inverted, blurred; then through the generator, where the overlay must keep every pixel
// the mask leaves wholly alone and lay exactly A1111's composite over the plain inpaint.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "inpaint_fixture.h"
#include "io/image_blur.h"
#include "pipeline/mask_crop.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

const std::filesystem::path kDir = test::fixture("inpaint_overlay");

// How many bytes differ.
int differing(const io::Image& a, const io::Image& b) {
  EXPECT_EQ(a.rgb.size(), b.rgb.size());
  int n = 0;
  for (size_t i = 0; i < std::min(a.rgb.size(), b.rgb.size()); ++i) n += a.rgb[i] != b.rgb[i];
  return n;
}

TEST(InpaintOverlay, MaskAndOverlayAreA1111s) {
  std::ifstream in(kDir / "inpaint_overlay_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases["cases"].size(), 5u);
  const std::filesystem::path crop = test::fixture("mask_crop");
  const io::Image picture = io::read_image(crop / "mask_crop_picture.png");
  const io::Image generated = io::read_image(kDir / "inpaint_overlay_generated.png");
  for (const nlohmann::json& c : cases["cases"]) {
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    io::Image mask =
        io::read_image(crop / ("mask_crop_mask_" + c["mask"].get<std::string>() + ".png"));
    if (c["round"]) mask = rounded_mask(mask);
    if (c["invert"])
      for (uint8_t& v : mask.rgb) v = static_cast<uint8_t>(255 - v);  // a grey mask: luma = v
    if (c["blur"].get<double>() > 0) mask = io::gaussian_blur(mask, c["blur"].get<float>());
    const io::Image want_mask = io::read_image(kDir / ("inpaint_overlay_" + name + "_mask.png"));
    EXPECT_EQ(differing(mask, want_mask), 0);
    EXPECT_EQ(differing(overlay_original(want_mask, picture, generated),
                        io::read_image(kDir / ("inpaint_overlay_" + name + ".png"))),
              0);
  }
  EXPECT_NE(test::error_of([&] {
              overlay_original(picture, picture, io::Image{1, 1, {0, 0, 0}});
            }).find("at one size"),
            std::string::npos);
}

// Through the generator: the overlaid inpaint is the plain one with A1111's composite over it,
// and keeps the picture exactly wherever the mask is black; rounding a soft mask is rounding it
// by hand.
TEST(InpaintOverlay, GeneratorLaysTheOriginalBackOverTheInpaint) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto [picture, mask] = picture_and_mask();
  GenerationRequest r = inpaint_request(picture, mask);
  const io::Image plain = tiny_zimage().generate(r, {}).front();
  r.overlay_original = true;
  const io::Image overlaid = tiny_zimage().generate(r, {}).front();
  EXPECT_EQ(overlaid.rgb, overlay_original(mask, picture, plain).rgb);
  int kept = 0, changed_outside = 0;
  for (size_t i = 0; i < mask.rgb.size(); ++i)
    if (mask.rgb[i] == 0) {
      ++kept;
      changed_outside += overlaid.rgb[i] != picture.rgb[i];
    }
  EXPECT_EQ(kept, 3 * 32 * 32 * 3 / 4);
  EXPECT_EQ(changed_outside, 0);
  EXPECT_GT(differing(plain, picture), 0) << "without the overlay the VAE changes the rest";
  EXPECT_EQ(tiny_zimage().record(r, {}, 0).request.at("overlay_original"), true);

  io::Image soft = mask;
  for (uint8_t& v : soft.rgb) v = v ? 129 : 128;  // rounds to the same square
  GenerationRequest rounded = r;
  rounded.mask = soft;
  rounded.round_mask = true;
  EXPECT_EQ(tiny_zimage().generate(rounded, {}).front().rgb, overlaid.rgb);
}

}  // namespace
}  // namespace zflow::pipeline
