#include "pipeline/image_tensor.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace zflow::pipeline {

uint8_t decoded_to_u8(float x) {
  // Written as separate float32 statements so no multiply-add is fused; torch runs them as
  // separate kernels (mul, add, clamp) and numpy multiplies by 255 in float32.
  const float half = x * 0.5f;
  float y = half + 0.5f;
  y = std::clamp(y, 0.0f, 1.0f);
  const float scaled = y * 255.0f;
  return static_cast<uint8_t>(std::nearbyint(scaled));  // default rounding mode: half to even
}

Tensor image_to_tensor(const io::Image& image) {
  ZF_CHECK(image.width > 0 && image.height > 0 &&
               image.rgb.size() == 3 * static_cast<size_t>(image.width) * image.height,
           "[image_to_tensor] malformed image {}x{} with {} bytes", image.width, image.height,
           image.rgb.size());
  const int64_t h = image.height, w = image.width;
  Tensor out = Tensor::empty({1, 3, h, w}, DType::F32);
  float* dst = out.data<float>();  // [3, H, W]
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const float unit = static_cast<float>(image.rgb[3 * (y * w + x) + c]) / 255.0f;
        const float twice = 2.0f * unit;
        dst[(c * h + y) * w + x] = twice - 1.0f;
      }
  return out;
}

std::vector<io::Image> tensor_to_images(const Tensor& images) {
  ZF_CHECK(images.ndim() == 4 && images.size(1) == 3 && images.dtype() == DType::F32,
           "[tensor_to_images] expected a float32 [B, 3, H, W] tensor, got {} {}",
           dtype_name(images.dtype()), shape_str(images.shape()));
  const Tensor src = images.contiguous();
  const float* p = src.data<float>();  // [B, 3, H, W]
  const int64_t b = src.size(0), h = src.size(2), w = src.size(3);
  std::vector<io::Image> out(static_cast<size_t>(b));
  for (int64_t n = 0; n < b; ++n) {
    io::Image& im = out[static_cast<size_t>(n)];
    im.width = static_cast<int>(w);
    im.height = static_cast<int>(h);
    im.rgb.resize(static_cast<size_t>(3 * h * w));
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          im.rgb[3 * (y * w + x) + c] = decoded_to_u8(p[((n * 3 + c) * h + y) * w + x]);
  }
  return out;
}

uint8_t pillow_luma(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

int64_t torch_nearest_index(int64_t out, int64_t in_size, int64_t out_size) {
  // aten/src/ATen/native/UpSample.h nearest_idx: exact shortcuts for 1x and 2x, otherwise a
  // float32 scale.
  if (out_size == in_size) return out;
  if (out_size == 2 * in_size) return out >> 1;
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float pos = static_cast<float>(out) * scale;
  return std::min(static_cast<int64_t>(std::floor(pos)), in_size - 1);
}

namespace {

void check_mask(const io::Image& mask, int64_t latent_h, int64_t latent_w) {
  ZF_CHECK(mask.width > 0 && mask.height > 0 &&
               mask.rgb.size() == 3 * static_cast<size_t>(mask.width) * mask.height,
           "[mask] malformed mask image {}x{}", mask.width, mask.height);
  ZF_CHECK(latent_h > 0 && latent_w > 0, "[mask] latent size must be positive, got {}x{}", latent_w,
           latent_h);
}

}  // namespace

Tensor preprocess_mask(const io::Image& mask, int64_t latent_h, int64_t latent_w) {
  check_mask(mask, latent_h, latent_w);
  Tensor out = Tensor::empty({1, 1, latent_h, latent_w}, DType::F32);
  float* dst = out.data<float>();  // [h, w]
  for (int64_t y = 0; y < latent_h; ++y) {
    const int64_t sy = torch_nearest_index(y, mask.height, latent_h);
    for (int64_t x = 0; x < latent_w; ++x) {
      const int64_t sx = torch_nearest_index(x, mask.width, latent_w);
      const uint8_t* px = &mask.rgb[3 * (sy * mask.width + sx)];
      const float unit = static_cast<float>(pillow_luma(px[0], px[1], px[2])) / 255.0f;
      dst[y * latent_w + x] = unit < 0.5f ? 0.0f : 1.0f;
    }
  }
  return out;
}

namespace {

// torch's upsample_bilinear2d source position for align_corners=False with no scale given:
// (out + 0.5) * (in / out) - 0.5 in float, clamped at 0; the lower index, the upper (clamped to
// the last) and the upper's weight.
struct BilinearTap {
  int64_t low, high;
  float weight;
};
BilinearTap bilinear_tap(int64_t out, int64_t in_size, int64_t out_size) {
  const float scale = static_cast<float>(in_size) / static_cast<float>(out_size);
  const float source = std::max(scale * (static_cast<float>(out) + 0.5f) - 0.5f, 0.0f);
  const int64_t low = static_cast<int64_t>(source);
  return {low, std::min(low + 1, in_size - 1), source - static_cast<float>(low)};
}

}  // namespace

Tensor preprocess_mask_bilinear(const io::Image& mask, int64_t latent_h, int64_t latent_w) {
  check_mask(mask, latent_h, latent_w);
  auto binary = [&](int64_t y, int64_t x) {
    const uint8_t* px = &mask.rgb[3 * (y * mask.width + x)];
    return static_cast<float>(pillow_luma(px[0], px[1], px[2])) / 255.0f < 0.5f ? 0.0f : 1.0f;
  };
  Tensor out = Tensor::empty({1, 1, latent_h, latent_w}, DType::F32);
  float* dst = out.data<float>();
  for (int64_t y = 0; y < latent_h; ++y) {
    const BilinearTap ty = bilinear_tap(y, mask.height, latent_h);
    for (int64_t x = 0; x < latent_w; ++x) {
      const BilinearTap tx = bilinear_tap(x, mask.width, latent_w);
      // torch's order: rows blended within each source row first, then between the rows.
      const float top =
          (1.0f - tx.weight) * binary(ty.low, tx.low) + tx.weight * binary(ty.low, tx.high);
      const float bottom =
          (1.0f - tx.weight) * binary(ty.high, tx.low) + tx.weight * binary(ty.high, tx.high);
      dst[y * latent_w + x] = (1.0f - ty.weight) * top + ty.weight * bottom;
    }
  }
  return out;
}

}  // namespace zflow::pipeline
