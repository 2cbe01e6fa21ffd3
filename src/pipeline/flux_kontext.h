// FLUX.1 Kontext's reference image (black-forest-labs/FLUX.1-Kontext-dev; diffusers 0.42.1
// FluxKontextPipeline): the picture to edit joins every forward as further tokens after the noisy
// ones, and the velocity is read from the noisy tokens only.
//   size: the image's sides rounded down to 16 pixels give its aspect ratio; the Kontext
//     resolution nearest that ratio (a list of about a megapixel each, from BFL's release) is the
//     size it is Lanczos-resized to, from the original pixels
//   tokens: VAE posterior mode (no noise drawn), normalised, packed 2 x 2, at positions
//     (1, row, col), where the noisy tokens are at (0, row, col)
// Inpainting (FluxKontextInpaintPipeline): the picture to inpaint, at its Kontext resolution, is
// encoded by its posterior mode too; it starts the latents (strength 1 by default) and is the
// reference, unless a separate reference image is given; the kept part is blended back after
// every step as FluxInpaintPipeline does.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "models/flux_dit.h"

namespace zflow::pipeline {

// The Kontext resolution (width, height) for an image of width x height pixels: the nearest in
// aspect ratio to the sides rounded down to multiples of `multiple` (ties: the narrower). An
// Error when the image is smaller than one token.
std::pair<int, int> kontext_resolution(int width, int height, int64_t multiple);

struct KontextReference {
  Tensor tokens;                          // [1, (H / 2f) (W / 2f), 4C]
  std::vector<models::FluxPosition> ids;  // (1, row, col) for each token
};

// Resizes `image` to its Kontext resolution and encodes it. vae_tiling encodes in tiles.
KontextReference kontext_reference(const models::AutoencoderKL& vae, const io::Image& image,
                                   bool vae_tiling);
// The same for `image` Lanczos-resized to width x height instead (Kontext inpainting: the
// picture to inpaint is its own reference, at the output's size).
KontextReference kontext_tokens(const models::AutoencoderKL& vae, const io::Image& image,
                                int64_t width, int64_t height, bool vae_tiling);

}  // namespace zflow::pipeline
