// SigLIP 2's NaFlex vision tower and its image processor against transformers' Siglip2VisionModel
// and Siglip2ImageProcessor (Pillow backend) on the tiny random tower of
// tools/golden/make_zimage_omni.py (hidden 24, 2 layers, 2 heads, patches of 4 pixels, a 4 x 4
// position grid, at most 24 patches; bf16 weights computed in float32 on both sides). Four images
// cover shrinking (80x64 -> 5x4 patches), a tall one (6x4), enlarging (10x7 -> 6x4) and a grid of
// two rows (12x2: the positions shrink along one axis and grow along the other). Tolerances: the
// pixels equal to 1e-6 (Pillow-exact bilinear; a one-level resize error is 7.8e-3); the hidden
// state max |got - want| / max |want| <= 1e-5 (float32 both sides; positions resized without
// antialiasing measure far more).
#include "models/siglip2_vision.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow::models {
namespace {

using test::relative_error;

const std::filesystem::path kDir = test::fixture("zimage_omni");
const Siglip2ProcessorConfig kProcessor{.patch_size = 4, .max_num_patches = 24};
constexpr const char* kImages[] = {"a", "b", "small", "wide"};

const io::SafetensorsFile& golden() {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kDir / "zimage_omni_siglip_io.safetensors");
  return file;
}

io::Image image(const std::string& name) {
  return io::read_image(kDir / ("zimage_omni_tiny_" + name + ".png"));
}

std::pair<int64_t, int64_t> golden_grid(const std::string& name) {
  const Tensor shape = golden().tensor(name + ".spatial_shapes");
  return {shape.data<int32_t>()[0], shape.data<int32_t>()[1]};
}

TEST(Siglip2Vision, ProcessorConfigIsRead) {
  const auto c = Siglip2ProcessorConfig::from_json_file(kDir / "tiny_omni" / "siglip_processor" /
                                                        "preprocessor_config.json");
  EXPECT_EQ(c.patch_size, 4);
  EXPECT_EQ(c.max_num_patches, 24);
}

TEST(Siglip2Vision, PatchesAsTheImageProcessorMakesThem) {
  for (const std::string name : kImages) {
    SCOPED_TRACE(name);
    const Siglip2Patches got = siglip2_patches(image(name), kProcessor);
    EXPECT_EQ(std::make_pair(got.rows, got.cols), golden_grid(name));
    const Tensor want = golden().tensor(name + ".pixel_values");
    ASSERT_EQ(got.pixels.shape(), want.shape());
    EXPECT_LE(relative_error(got.pixels, want), 1e-6);
  }
}

TEST(Siglip2Vision, PatchGridFromFirstPrinciples) {
  // 16 x 16 pixel patches, at most 256: a square image of any size becomes 16 x 16 patches; a
  // 2:1 one 11 x 22 (242 patches; 12 x 23 would be 276); a tiny one keeps at least one patch.
  EXPECT_EQ(siglip2_patch_grid(1000, 1000, 16, 256), std::make_pair(int64_t{16}, int64_t{16}));
  EXPECT_EQ(siglip2_patch_grid(64, 64, 16, 256), std::make_pair(int64_t{16}, int64_t{16}));
  EXPECT_EQ(siglip2_patch_grid(2000, 1000, 16, 256), std::make_pair(int64_t{11}, int64_t{22}));
  EXPECT_EQ(siglip2_patch_grid(4000, 10, 16, 16), std::make_pair(int64_t{1}, int64_t{16}));
}

TEST(Siglip2Vision, LastHiddenStateMatchesTransformers) {
  const Siglip2VisionModel model = load_siglip2_vision_model(kDir / "tiny_omni" / "siglip");
  EXPECT_EQ(model.config().num_patches, 16);
  for (const std::string name : kImages) {
    SCOPED_TRACE(name);
    const auto [rows, cols] = golden_grid(name);
    const Siglip2Patches patches{rows, cols,
                                 golden().tensor(name + ".pixel_values").to(DType::F32)};
    EXPECT_LE(relative_error(model.encode(patches), golden().tensor(name + ".last_hidden_state")),
              1e-5);
  }
}

TEST(Siglip2Vision, ErrorsNameTheProblem) {
  EXPECT_THROW(Siglip2VisionConfig::from_json(R"({"hidden_act": "relu"})", "x.json"), Error);
  EXPECT_THROW(Siglip2VisionConfig::from_json(R"({"num_patches": 15})", "x.json"), Error);
  const Siglip2VisionModel model = load_siglip2_vision_model(kDir / "tiny_omni" / "siglip");
  EXPECT_THROW(model.encode({2, 2, Tensor::zeros({4, 3 * 8 * 8}, DType::F32)}), Error);
  // Another model's weights are not a SigLIP 2 tower.
  EXPECT_THROW(load_siglip2_vision_model(kDir / "tiny_omni" / "transformer"), Error);
}

}  // namespace
}  // namespace zflow::models
