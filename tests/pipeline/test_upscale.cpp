// Upscaling pictures with an ESRGAN model: ComfyUI's tiling against its tiled_scale, restated in
// make_esrgan.py over spandrel's network (8-pixel tiles overlapping by 2 on a 13 x 11 picture:
// 2 x 2 tiles, the last ones short), and A1111's passes-then-Lanczos.
// Tolerance: fp32 against fp32, 1e-4 of the output's scale.
#include <gtest/gtest.h>

#include <cmath>

#include "io/image_resize.h"
#include "io/safetensors.h"
#include "models/esrgan.h"
#include "pipeline/upscale.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

Tensor golden(const std::string& name) {
  return io::SafetensorsFile::open(test::fixture("esrgan/esrgan_io.safetensors"))
      .tensor(name)
      .to(DType::F32);
}

models::Esrgan x4() {
  return models::load_esrgan(test::fixture("esrgan/esrgan_x4_basicsr.safetensors"));
}

// The fixture's picture as 8-bit RGB (it was made as uint8 / 255).
io::Image picture() {
  const Tensor image = golden("image");
  const auto v = image.to_f32_vector();
  io::Image im{static_cast<int>(image.size(3)), static_cast<int>(image.size(2)), {}};
  const size_t plane = v.size() / 3;
  im.rgb.resize(v.size());
  for (size_t c = 0; c < 3; ++c)
    for (size_t i = 0; i < plane; ++i)
      im.rgb[3 * i + c] = static_cast<uint8_t>(std::lround(v[c * plane + i] * 255.0f));
  return im;
}

TEST(Upscale, TilesBlendAsComfyUI) {
  const models::Esrgan model = x4();
  const Tensor tiled = upscale_tiled(model, golden("image"), {8, 2});
  EXPECT_LE(test::relative_error(tiled, golden("x4_tiled_output")), 1e-4);
  // The tiles are real: their blend is not the whole picture's output (spandrel's differ by 0.46).
  EXPECT_GT(test::relative_error(tiled, golden("x4_output")), 1e-2);
  // A picture within one tile runs whole.
  EXPECT_LE(
      test::relative_error(upscale_tiled(model, golden("image"), {16, 2}), golden("x4_output")),
      1e-4);
  EXPECT_THROW(upscale_tiled(model, golden("image"), {4, 4}), Error);
}

TEST(Upscale, PicturesRoundTheClampedOutput) {
  const io::Image out = upscale_image(x4(), picture(), {8, 2});
  ASSERT_EQ(out.width, 52);
  ASSERT_EQ(out.height, 44);
  const auto y = golden("x4_tiled_output").to_f32_vector();
  const size_t plane = y.size() / 3;
  int off = 0, clipped = 0;
  for (size_t c = 0; c < 3; ++c)
    for (size_t i = 0; i < plane; ++i) {
      const float v = y[c * plane + i];
      clipped += v <= 0.0f || v >= 1.0f;
      const double want = std::nearbyint(std::clamp(v, 0.0f, 1.0f) * 255.0);
      // A value within 1e-4 of the output's scale of a rounding boundary may land either side.
      off +=
          std::abs(out.rgb[3 * i + c] - want) > (std::abs(std::fmod(v * 255.0, 1.0) - 0.5) < 0.05);
    }
  EXPECT_EQ(off, 0);
  EXPECT_GT(clipped, 0);  // the clamp is exercised
}

TEST(Upscale, A1111PassesUntilTheSizeIsCoveredThenLanczos) {
  const models::Esrgan model = x4();
  const io::Image in = picture();
  const io::Image once = upscale_image(model, in);
  // 40 x 30 fits in one pass (52 x 44); 60 x 50 needs two (208 x 176).
  const io::Image small = upscale_image_to(model, in, 40, 30);
  EXPECT_EQ(small.rgb, io::resize_image(once, 40, 30, io::ResampleFilter::Lanczos).rgb);
  const io::Image big = upscale_image_to(model, in, 60, 50);
  EXPECT_EQ(big.rgb,
            io::resize_image(upscale_image(model, once), 60, 50, io::ResampleFilter::Lanczos).rgb);
  EXPECT_EQ(upscale_image_to(model, in, 52, 44).rgb, once.rgb);  // exactly one pass: no resize
}

}  // namespace
}  // namespace zflow::pipeline
