// AUTOMATIC1111's latent upscalers for the hires fix ("Latent", "Latent (bicubic antialiased)",
// ...): the first pass's latents resized by torch.nn.functional.interpolate to the hires size in
// latent cells, and the second pass starts from them without a VAE round trip. A1111's default
// when a request asks for the hires fix without naming an upscaler.
#pragma once

#include <optional>
#include <string_view>

#include "core/tensor.h"

namespace zflow::pipeline {

// A1111's shared.latent_upscale_modes: interpolate's mode and antialias flag.
enum class LatentUpscale {
  Bilinear,             // "Latent"
  BilinearAntialiased,  // "Latent (antialiased)"
  Bicubic,              // "Latent (bicubic)"
  BicubicAntialiased,   // "Latent (bicubic antialiased)"
  Nearest,              // "Latent (nearest)"
  NearestExact,         // "Latent (nearest-exact)"
};

// A1111's name of the mode.
std::string_view latent_upscale_name(LatentUpscale mode);
// The mode of an A1111 name, case-insensitively, also written with '-' for the spaces and no
// brackets ("latent-bicubic-antialiased"); nullopt for any other name.
std::optional<LatentUpscale> parse_latent_upscale(std::string_view name);

// interpolate(latents, size=(height, width), mode, antialias, align_corners=False) on float32
// latents [B, C, h, w], as torch's CPU kernels compute it in float (to within float rounding):
// bilinear and bicubic (A = -0.75) sample at (i + 0.5) * in / out - 0.5 with the border
// repeated; their antialiased forms weigh every input cell under a triangle or a Keys cubic
// (a = -0.5) stretched by the scale when shrinking, normalised; nearest takes
// floor(i * in / out), nearest-exact floor((i + 0.5) * in / out).
Tensor upscale_latents(const Tensor& latents, int64_t height, int64_t width, LatentUpscale mode);

}  // namespace zflow::pipeline
