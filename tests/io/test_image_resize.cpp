// Resizing against Pillow: every case in tests/fixtures/resize (made by
// tools/golden/make_resize.py from Pillow's Image.resize, and one case from diffusers'
// VaeImageProcessor.preprocess) must come out byte for byte the same, for every filter.
// Tolerance 0: Pillow's arithmetic is integer after the weights, and the weights are
// computed with the same double operations in the same order, so any difference is a bug.
#include "io/image_resize.h"

#include <gmock/gmock.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow::io {
namespace {

using ::testing::HasSubstr;

const SafetensorsFile& fixture() {
  static const SafetensorsFile file =
      SafetensorsFile::open(test::fixture("resize/pillow_resize_rgb_l_cases.safetensors"));
  return file;
}

std::vector<uint8_t> bytes_of(const std::string& name) {
  const Tensor t = fixture().tensor(name);
  EXPECT_EQ(t.dtype(), DType::U8) << name;
  const auto* p = static_cast<const uint8_t*>(t.raw());
  return {p, p + t.nbytes()};
}

// Count of differing bytes, with the first one described, so a failure says where.
std::string describe_mismatch(const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
                              int width, int channels) {
  if (got.size() != want.size())
    return "size " + std::to_string(got.size()) + " vs " + std::to_string(want.size());
  size_t diffs = 0, first = got.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i] != want[i] && diffs++ == 0) first = i;
  if (diffs == 0) return "";
  const size_t pixel = first / channels;
  return std::to_string(diffs) + " bytes differ; first at x=" + std::to_string(pixel % width) +
         " y=" + std::to_string(pixel / width) + " channel " + std::to_string(first % channels) +
         ": got " + std::to_string(got[first]) + ", Pillow " + std::to_string(want[first]);
}

TEST(ImageResize, FixtureIsCurrent) {
  EXPECT_EQ(fixture().metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(fixture().metadata().at("generator"), "tools/golden/make_resize.py");
}

TEST(ImageResize, EveryFilterMatchesPillowExactly) {
  const auto cases = nlohmann::json::parse(fixture().metadata().at("cases"));
  ASSERT_GE(cases.size(), 10u);
  int checked = 0;
  for (const auto& c : cases) {
    const std::string name = c["name"];
    const bool grey = c["mode"] == "L";
    const int w = c["source"][0], h = c["source"][1];
    const int tw = c["target"][0], th = c["target"][1];
    const std::vector<uint8_t> input = bytes_of(name + ".input");
    for (const std::string filter_name : c["filters"]) {
      SCOPED_TRACE(name + " " + filter_name);
      const ResampleFilter filter = resample_filter_from_name(filter_name);
      const std::vector<uint8_t> want = bytes_of(name + "." + filter_name);
      std::vector<uint8_t> got;
      if (grey) {
        got = resize_grey(input, w, h, tw, th, filter);
      } else {
        const Image out = resize_image(Image{w, h, input}, tw, th, filter);
        EXPECT_EQ(out.width, tw);
        EXPECT_EQ(out.height, th);
        got = out.rgb;
      }
      EXPECT_EQ(describe_mismatch(got, want, tw, grey ? 1 : 3), "");
      ++checked;
    }
  }
  EXPECT_GE(checked, 6 * 15);
}

// A grey image as RGB with R = G = B resizes to the grey result in every channel: the
// channels are independent, so resize_grey is resize_image on one of them.
TEST(ImageResize, GreyAgreesWithEqualRgbChannels) {
  const std::vector<uint8_t> grey = bytes_of("grey_up_20x30_to_64x48.input");
  Image rgb{20, 30, {}};
  for (uint8_t v : grey) rgb.rgb.insert(rgb.rgb.end(), {v, v, v});
  const Image out = resize_image(rgb, 23, 17, ResampleFilter::Lanczos);
  const std::vector<uint8_t> want = resize_grey(grey, 20, 30, 23, 17, ResampleFilter::Lanczos);
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(out.rgb[3 * i + 1], want[i]) << "pixel " << i;
}

TEST(ImageResize, FilterNames) {
  for (auto f : {ResampleFilter::Nearest, ResampleFilter::Box, ResampleFilter::Bilinear,
                 ResampleFilter::Hamming, ResampleFilter::Bicubic, ResampleFilter::Lanczos})
    EXPECT_EQ(resample_filter_from_name(resample_filter_name(f)), f);
  EXPECT_EQ(resample_filter_from_name("LANCZOS"), ResampleFilter::Lanczos);
  EXPECT_EQ(resample_filter_from_name("linear"), ResampleFilter::Bilinear);
  EXPECT_THAT([] { resample_filter_from_name("mks2021"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("'mks2021'")));
}

TEST(ImageResize, RefusesBadSizes) {
  const Image image{4, 3, std::vector<uint8_t>(36, 7)};
  const auto lanczos = ResampleFilter::Lanczos;
  EXPECT_THAT([&] { resize_image(image, 0, 5, lanczos); },
              ::testing::ThrowsMessage<Error>(HasSubstr("target size 0x5 is not positive")));
  EXPECT_THAT([&] { resize_image(image, 5, -2, lanczos); },
              ::testing::ThrowsMessage<Error>(HasSubstr("target size 5x-2 is not positive")));
  EXPECT_THAT([&] { resize_image(image, kMaxImageSide + 1, 8, lanczos); },
              ::testing::ThrowsMessage<Error>(HasSubstr("exceeds the limit of 16384 per side")));
  EXPECT_THAT([&] { resize_image(Image{}, 8, 8, lanczos); },
              ::testing::ThrowsMessage<Error>(HasSubstr("input RGB image is empty (0x0)")));
  EXPECT_THAT(
      [&] {
        resize_image(Image{4, 3, std::vector<uint8_t>(35)}, 8, 8, lanczos);
      },
      ::testing::ThrowsMessage<Error>(HasSubstr("holds 35 bytes, expected 36")));
  EXPECT_THAT([&] { resize_grey({}, 0, 0, 8, 8, lanczos); },
              ::testing::ThrowsMessage<Error>(HasSubstr("input greyscale image is empty")));
}

}  // namespace
}  // namespace zflow::io
