// Inpainting only the masked area, step by step, against diffusers 0.42.1's VaeImageProcessor on
// Pillow 13 (tools/golden/make_mask_crop.py): a 100x72 picture and soft-edged masks (a blob
// inside it, a corner touching two borders, a thin band), brought to 64x48, 48x64 and 32x32 with
// paddings 0-12. The crop box must be get_crop_region's exactly; the cropped-and-filled picture
// and mask, and the overlay of a made-up generated image, equal Pillow's bytes exactly (Lanczos
// with edge bands from zero-height boxes, RGBa paste, alpha_composite: integer arithmetic).
#include "pipeline/mask_crop.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/image.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

const std::filesystem::path kDir = test::fixture("mask_crop");

const nlohmann::json& fixture() {
  static const nlohmann::json j = [] {
    std::ifstream in(kDir / "mask_crop_cases.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

io::Image image(const nlohmann::json& name) {
  return io::read_image(kDir / name.get<std::string>());
}

io::Image mask_of(const nlohmann::json& step) {
  return image(fixture()["masks"][step["mask"].get<std::string>()]);
}

// Pixels that differ, so a failure says how far off it is.
int differing(const io::Image& got, const io::Image& want) {
  EXPECT_EQ(got.width, want.width);
  EXPECT_EQ(got.height, want.height);
  if (got.rgb.size() != want.rgb.size()) return -1;
  int n = 0;
  for (size_t i = 0; i < got.rgb.size(); ++i)
    if (got.rgb[i] != want.rgb[i]) {
      if (n < 12)
        std::printf("  pixel (%zu, %zu) channel %zu: %d, want %d\n", i / 3 % want.width,
                    i / 3 / want.width, i % 3, got.rgb[i], want.rgb[i]);
      ++n;
    }
  return n;
}

TEST(MaskCrop, BoxIsGetCropRegions) {
  for (const auto& step : fixture()["steps"]) {
    SCOPED_TRACE(step["name"].get<std::string>());
    const CropBox box = mask_crop_box(mask_of(step), step["width"], step["height"], step["pad"]);
    const auto want = step["box"].get<std::vector<int>>();
    EXPECT_EQ(box, (CropBox{want[0], want[1], want[2], want[3]}));
  }
}

TEST(MaskCrop, CropAndFillIsPillowsBytes) {
  const io::Image picture = image(fixture()["picture"]);
  for (const auto& step : fixture()["steps"]) {
    SCOPED_TRACE(step["name"].get<std::string>());
    const auto b = step["box"].get<std::vector<int>>();
    const CropBox box{b[0], b[1], b[2], b[3]};
    EXPECT_EQ(differing(crop_and_fill(picture, box, step["width"], step["height"]),
                        image(step["cropped_image"])),
              0);
    // The mask the same way, grey.
    const io::Image mask = crop_and_fill(mask_of(step), box, step["width"], step["height"]);
    EXPECT_EQ(differing(mask, image(step["cropped_mask"])), 0);
  }
}

TEST(MaskCrop, OverlayIsApplyOverlaysBytes) {
  const io::Image picture = image(fixture()["picture"]);
  for (const auto& step : fixture()["steps"]) {
    SCOPED_TRACE(step["name"].get<std::string>());
    const auto b = step["box"].get<std::vector<int>>();
    const io::Image got = paste_through_mask(mask_of(step), picture, image(step["generated"]),
                                             CropBox{b[0], b[1], b[2], b[3]});
    EXPECT_EQ(differing(got, image(step["overlay"])), 0);
  }
}

TEST(MaskCrop, BadInputsAreNamed) {
  const io::Image black{8, 8, std::vector<uint8_t>(8 * 8 * 3, 0)};
  EXPECT_NE(test::error_of([&] { mask_crop_box(black, 16, 16, 4); }).find("black everywhere"),
            std::string::npos);
  EXPECT_THROW(mask_crop_box(black, 0, 16, 4), Error);
  const io::Image picture = image(fixture()["picture"]);
  EXPECT_THROW(paste_through_mask(black, picture, picture, {0, 0, 8, 8}), Error);
}

}  // namespace
}  // namespace zflow::pipeline
