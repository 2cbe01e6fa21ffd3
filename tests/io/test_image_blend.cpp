// Pillow's Image.blend from its definition (libImaging/Blend.c): out = (UINT8)(a + alpha * (b - a))
// in C float, so fractions are truncated, not rounded; alpha 0 and 1 give the inputs; pictures of
// two sizes are refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/image_blend.h"
#include "test_util.h"

namespace zflow::io {
namespace {

TEST(ImageBlend, TruncatesAsPillowDoes) {
  const Image a{2, 1, {10, 200, 0, 255, 7, 100}};
  const Image b{2, 1, {20, 100, 255, 0, 8, 101}};
  // 10 + 0.25 * 10 = 12.5 -> 12; 200 - 25 = 175; 63.75 -> 63; 255 - 63.75 = 191.25 -> 191;
  // 7.25 -> 7; 100.25 -> 100.
  EXPECT_EQ(blend_images(a, b, 0.25f).rgb, (std::vector<uint8_t>{12, 175, 63, 191, 7, 100}));
  EXPECT_EQ(blend_images(a, b, 0.0f).rgb, a.rgb);
  EXPECT_EQ(blend_images(a, b, 1.0f).rgb, b.rgb);
  EXPECT_THAT(test::error_of([&] {
                blend_images(a, Image{1, 1, {1, 2, 3}}, 0.5f);
              }),
              testing::HasSubstr("cannot blend a 2x1 picture with a 1x1 one"));
}

}  // namespace
}  // namespace zflow::io
