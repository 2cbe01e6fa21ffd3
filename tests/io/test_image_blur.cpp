// Pillow's ImageFilter.GaussianBlur (what diffusers' VaeImageProcessor.blur softens masks with),
// byte for byte on the fixtures of tools/golden/make_mask_crop.py: soft masks blurred with radii
// 0.7 (a box under one pixel wide), 2.5, 4 and 33 (wider than the 100x72 picture, so every box
// reaches past both borders) and the RGB picture with radius 3. Integer arithmetic: exact.
#include "io/image_blur.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace zflow::io {
namespace {

const std::filesystem::path kDir = test::fixture("mask_crop");

TEST(ImageBlur, GaussianBlurIsPillows) {
  std::ifstream in(kDir / "mask_crop_cases.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases["blurs"].size(), 5u);
  for (const auto& c : cases["blurs"]) {
    SCOPED_TRACE(c["expected"].get<std::string>());
    const Image got =
        gaussian_blur(read_image(kDir / c["source"].get<std::string>()), c["radius"].get<float>());
    const Image want = read_image(kDir / c["expected"].get<std::string>());
    ASSERT_EQ(got.rgb.size(), want.rgb.size());
    int differing = 0;
    for (size_t i = 0; i < got.rgb.size(); ++i) differing += got.rgb[i] != want.rgb[i];
    EXPECT_EQ(differing, 0);
  }
}

TEST(ImageBlur, ZeroIsACopyAndBadRadiiAreErrors) {
  const Image image{3, 2,
                    std::vector<uint8_t>{0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130,
                                         140, 150, 160, 170}};
  EXPECT_EQ(gaussian_blur(image, 0.0f).rgb, image.rgb);
  EXPECT_THROW(gaussian_blur(image, -1.0f), Error);
  EXPECT_THROW(gaussian_blur(image, std::nanf("")), Error);
}

}  // namespace
}  // namespace zflow::io
