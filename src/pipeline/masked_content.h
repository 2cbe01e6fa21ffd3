// AUTOMATIC1111's "Masked content" (its API's inpainting_fill): what the masked area holds when
// inpainting starts (modules/processing.py, StableDiffusionProcessingImg2Img.init):
//   original        the init image as it is (diffusers' inpaint pipelines; zflow's default)
//   fill            the masked area painted over with its surroundings' colours (below); the
//                   default of A1111's API
//   latent noise    fill, then the init latents' masked cells replaced by the start noise, so
//                   the masked area starts as pure noise whatever the strength
//   latent nothing  fill, then the init latents' masked cells zero
// The latent modes act on the pipeline's own latent-size mask (1 = repaint) and start noise.
#pragma once

#include <optional>
#include <string_view>

#include "core/tensor.h"
#include "io/image.h"

namespace zflow::pipeline {

enum class MaskedContent { Original, Fill, LatentNoise, LatentNothing };

// "original", "fill", "latent noise", "latent nothing": A1111's names (its infotext's).
std::string_view masked_content_name(MaskedContent content);
// The mode of that name (also with '-' or '_' for the space); nullopt for anything else.
std::optional<MaskedContent> parse_masked_content(std::string_view name);

// A1111's masking.fill, byte for byte with Pillow 13: the picture's unmasked pixels (mask grey
// as Pillow's convert("L"), white = masked) premultiplied into RGBa, blurred with GaussianBlur
// radius 256, 64, 16, 4, 2 and 0, each blur alpha-composited 1, 1, 2, 4, 2 and 1 times over the
// layers before it: the masked area takes ever nearer colours, the unmasked area ends as it was.
// The mask must have the picture's size.
io::Image fill_masked_area(const io::Image& image, const io::Image& mask);

// The init latents [B, C, h, w] a latent mode starts from: with LatentNoise, (1 - m) z + m noise;
// with LatentNothing, (1 - m) z; otherwise z. mask [1 or B, 1, h, w], 1 = repaint.
Tensor latents_with_masked_content(const Tensor& image_latents, const Tensor& noise,
                                   const Tensor& mask, MaskedContent content);

}  // namespace zflow::pipeline
