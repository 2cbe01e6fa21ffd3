#include "pipeline/masked_content.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/image_blur.h"
#include "pipeline/flow_euler.h"
#include "pipeline/image_rgba.h"

namespace zflow::pipeline {

namespace {

constexpr std::array kNames = {"original", "fill", "latent noise", "latent nothing"};

}  // namespace

std::string_view masked_content_name(MaskedContent content) {
  return kNames[static_cast<size_t>(content)];
}

std::optional<MaskedContent> parse_masked_content(std::string_view name) {
  std::string spaced(name);
  std::replace_if(
      spaced.begin(), spaced.end(), [](char c) { return c == '-' || c == '_'; }, ' ');
  for (size_t i = 0; i < kNames.size(); ++i)
    if (spaced == kNames[i]) return static_cast<MaskedContent>(i);
  return std::nullopt;
}

io::Image fill_masked_area(const io::Image& image, const io::Image& mask) {
  ZF_CHECK(mask.width == image.width && mask.height == image.height,
           "[inpaint] masked content fill: the mask is {}x{} but the picture {}x{}", mask.width,
           mask.height, image.width, image.height);
  const RgbaImage masked = paste_outside_mask(image, mask);
  struct Layer {
    float radius;
    int repeats;
  };
  constexpr std::array kLayers = {Layer{256, 1}, Layer{64, 1}, Layer{16, 2},
                                  Layer{4, 4},   Layer{2, 2},  Layer{0, 1}};
  RgbaImage out{image.width, image.height, std::vector<uint8_t>(masked.px.size(), 0)};
  for (const Layer& layer : kLayers) {
    RgbaImage blurred = masked;
    io::gaussian_blur_interleaved(blurred.px, image.width, image.height, 4, layer.radius);
    unpremultiply(blurred);
    for (int k = 0; k < layer.repeats; ++k) alpha_composite(out, blurred);
  }
  return drop_alpha(out);
}

Tensor latents_with_masked_content(const Tensor& image_latents, const Tensor& noise,
                                   const Tensor& mask, MaskedContent content) {
  if (content != MaskedContent::LatentNoise && content != MaskedContent::LatentNothing)
    return image_latents;
  Tensor start = content == MaskedContent::LatentNoise
                     ? noise.clone()
                     : Tensor::zeros(image_latents.shape(), DType::F32);
  blend_masked(start, image_latents, mask);
  return start;
}

}  // namespace zflow::pipeline
