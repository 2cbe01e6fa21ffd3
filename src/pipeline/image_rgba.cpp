#include "pipeline/image_rgba.h"

#include <algorithm>

#include "core/error.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

namespace {

// Pillow's fixed-point division by 255 (libImaging/ImagingUtils.h SHIFTFORDIV255, DIV255).
uint32_t shift_div255(uint32_t a) {
  return ((a >> 8) + a) >> 8;
}
uint32_t div255(uint32_t a) {
  return shift_div255(a + 128);
}

size_t pixels(const io::Image& image) {
  return static_cast<size_t>(image.width) * image.height;
}

}  // namespace

RgbaImage opaque(const io::Image& image) {
  RgbaImage out{image.width, image.height, std::vector<uint8_t>(4 * pixels(image), 255)};
  for (size_t i = 0; i < pixels(image); ++i) std::copy_n(&image.rgb[3 * i], 3, &out.px[4 * i]);
  return out;
}

io::Image drop_alpha(const RgbaImage& image) {
  const size_t n = static_cast<size_t>(image.width) * image.height;
  io::Image out{image.width, image.height, std::vector<uint8_t>(3 * n)};
  for (size_t i = 0; i < n; ++i) std::copy_n(&image.px[4 * i], 3, &out.rgb[3 * i]);
  return out;
}

RgbaImage paste_outside_mask(const io::Image& image, const io::Image& mask) {
  ZF_CHECK(mask.width == image.width && mask.height == image.height,
           "[image] the mask is {}x{} but the picture {}x{}: they must match", mask.width,
           mask.height, image.width, image.height);
  RgbaImage out{image.width, image.height, std::vector<uint8_t>(4 * pixels(image))};
  for (size_t i = 0; i < pixels(image); ++i) {
    const uint32_t a =
        255u - pillow_luma(mask.rgb[3 * i], mask.rgb[3 * i + 1], mask.rgb[3 * i + 2]);
    // The paste blends into transparent black: DIV255(0 * (255 - a) + value * a).
    for (size_t c = 0; c < 3; ++c)
      out.px[4 * i + c] = static_cast<uint8_t>(div255(image.rgb[3 * i + c] * a));
    out.px[4 * i + 3] = static_cast<uint8_t>(a);
  }
  return out;
}

void unpremultiply(RgbaImage& image) {
  for (size_t i = 0; i < image.px.size(); i += 4) {
    const uint32_t a = image.px[i + 3];
    if (a == 0 || a == 255) continue;
    for (size_t c = 0; c < 3; ++c)
      image.px[i + c] = static_cast<uint8_t>(std::min(255u * image.px[i + c] / a, 255u));
  }
}

void alpha_composite(RgbaImage& dst, const RgbaImage& src) {
  ZF_CHECK(dst.width == src.width && dst.height == src.height,
           "[image] alpha_composite of {}x{} over {}x{}", src.width, src.height, dst.width,
           dst.height);
  constexpr uint32_t kBits = 7;  // AlphaComposite.c's PRECISION_BITS
  for (size_t i = 0; i < dst.px.size(); i += 4) {
    const uint32_t sa = src.px[i + 3], da = dst.px[i + 3];
    if (sa == 0) continue;
    const uint32_t out_a255 = sa * 255 + da * (255 - sa);
    const uint32_t coef1 = sa * 255 * 255 * (1u << kBits) / out_a255;
    const uint32_t coef2 = 255 * (1u << kBits) - coef1;
    for (size_t c = 0; c < 3; ++c) {
      const uint32_t sum = src.px[i + c] * coef1 + dst.px[i + c] * coef2;
      dst.px[i + c] = static_cast<uint8_t>(shift_div255(sum + (0x80u << kBits)) >> kBits);
    }
    dst.px[i + 3] = static_cast<uint8_t>(shift_div255(out_a255 + 0x80));
  }
}

}  // namespace zflow::pipeline
