// Outpainting's canvas and mask, from first principles: the picture lands at (left, top), every
// margin pixel repeats the nearest edge pixel, the mask is white exactly over the margins and a
// 16-pixel seam into the picture on each growing side, and a growing axis is widened to whole
// 16-pixel tokens on its far (else near) side.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/error.h"
#include "pipeline/outpaint.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

// A picture whose every pixel is distinct: (x, y, x ^ y).
io::Image gradient(int width, int height) {
  io::Image image{width, height, std::vector<uint8_t>(3 * size_t(width) * height)};
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      uint8_t* p = &image.rgb[3 * (size_t(y) * width + x)];
      p[0] = uint8_t(x);
      p[1] = uint8_t(y);
      p[2] = uint8_t(x ^ y);
    }
  return image;
}

const uint8_t* pixel(const io::Image& image, int x, int y) {
  return &image.rgb[3 * (size_t(y) * image.width + x)];
}

TEST(Outpaint, ParsesOneMarginOrFour) {
  EXPECT_EQ(parse_outpaint_margins("64", "--outpaint"), (OutpaintMargins{64, 64, 64, 64}));
  EXPECT_EQ(parse_outpaint_margins("0,32,128,0", "--outpaint"), (OutpaintMargins{0, 32, 128, 0}));
  EXPECT_EQ(format_outpaint_margins({1, 2, 3, 4}), "1,2,3,4");
  for (const char* bad :
       {"", "0", "0,0,0,0", "1,2", "1,2,3", "1,2,3,4,5", "-8", "8px", "1,,2,3", "99999", "1.5"}) {
    try {
      parse_outpaint_margins(bad, "--outpaint");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(std::string("--outpaint '") + bad + "'"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Outpaint, CanvasRepeatsEdgesAndMasksMarginsAndSeams) {
  const io::Image picture = gradient(64, 48);
  const OutpaintCanvas c = outpaint_canvas(picture, {32, 0, 16, 16});
  EXPECT_EQ(c.margins, (OutpaintMargins{32, 0, 16, 16}));  // 112 x 64: whole tokens already
  ASSERT_EQ(c.image.width, 112);
  ASSERT_EQ(c.image.height, 64);
  ASSERT_EQ(c.mask.width, 112);
  ASSERT_EQ(c.mask.height, 64);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 112; ++x) {
      const int sx = std::clamp(x - 32, 0, 63), sy = std::clamp(y, 0, 47);
      ASSERT_TRUE(
          std::equal(pixel(c.image, x, y), pixel(c.image, x, y) + 3, pixel(picture, sx, sy)))
          << x << "," << y;
      // Kept: x in [32 + 16, 32 + 64 - 16), y in [0, 48 - 12) (the seam is capped at 48 / 4).
      const bool keep = x >= 48 && x < 80 && y < 36;
      const uint8_t want = keep ? 0 : 255;
      ASSERT_TRUE(pixel(c.mask, x, y)[0] == want && pixel(c.mask, x, y)[1] == want &&
                  pixel(c.mask, x, y)[2] == want)
          << x << "," << y;
    }
}

TEST(Outpaint, GrowingAxesBecomeWholeTokens) {
  // 10 + 50 + 0 = 60: the left margin takes the 4 (there is no right one); 0 + 30 + 5 = 35: the
  // bottom takes 13; 10 + 50 + 3 = 63: the right takes 1. An axis with no margins keeps its size.
  EXPECT_EQ(outpaint_canvas(gradient(50, 30), {10, 0, 0, 5}).margins,
            (OutpaintMargins{14, 0, 0, 18}));
  EXPECT_EQ(outpaint_canvas(gradient(50, 30), {10, 1, 3, 1}).margins,
            (OutpaintMargins{10, 1, 4, 1}));
  const OutpaintCanvas c = outpaint_canvas(gradient(50, 30), {0, 8, 0, 0});
  EXPECT_EQ(c.margins, (OutpaintMargins{0, 18, 0, 0}));
  EXPECT_EQ(c.image.width, 50);
  EXPECT_EQ(c.image.height, 48);
}

TEST(Outpaint, RequestBecomesInpaintingAtFullStrength) {
  GenerationRequest request;
  EXPECT_THROW(apply_outpaint(request, {16, 0, 0, 0}), Error);  // nothing to grow
  request.init_image = gradient(32, 32);
  EXPECT_EQ(apply_outpaint(request, {16, 0, 0, 0}), (OutpaintMargins{16, 0, 0, 0}));
  ASSERT_TRUE(request.mask.has_value());
  EXPECT_EQ(request.init_image->width, 48);
  EXPECT_EQ(request.mask->width, 48);
  EXPECT_EQ(request.strength, 1.0);
  EXPECT_THROW(apply_outpaint(request, {16, 0, 0, 0}), Error);  // a mask already
  GenerationRequest weaker;
  weaker.init_image = gradient(32, 32);
  weaker.strength = 0.8;
  apply_outpaint(weaker, {0, 0, 0, 16});
  EXPECT_EQ(weaker.strength, 0.8);
}

TEST(Outpaint, RefusesCanvasesPastTheImageLimit) {
  EXPECT_NO_THROW(outpaint_canvas(gradient(16, 16), {4096, 0, 4096, 0}));    // 8208 wide
  EXPECT_THROW(outpaint_canvas(gradient(16000, 1), {400, 0, 0, 0}), Error);  // 16400 > 16384
}

}  // namespace
}  // namespace zflow::pipeline
