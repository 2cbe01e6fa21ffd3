// FLUX.1 Fill's conditioning (black-forest-labs/FLUX.1-Fill-dev; diffusers 0.42.1
// FluxFillPipeline.prepare_mask_latents): the transformer reads, beside each packed noisy token
// (4C features), the same token of
//   the masked picture: the init image with the mask's white part set to 0 (mid-grey in [-1, 1]),
//     VAE-encoded as a posterior sample drawn AFTER the start latents' draws, normalised, packed
//     (4C);
//   the mask at pixel resolution (binarised as every inpaint mask), each latent cell's f x f
//     pixels folded into f^2 channels (channel dy * f + dx), packed 2 x 2 (4 f^2).
// So a Fill transformer takes 8C + 4 f^2 input features (384 for the release: 64 + 64 + 256) and
// puts out 4C. The run starts as img2img (strength 1 by default: pure noise) and never blends the
// kept region back: the model draws it from the condition.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "core/tensor.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"

namespace zflow::pipeline {

// The input features a Fill transformer has for this VAE: 8C + 4 f^2.
int64_t flux_fill_in_channels(const models::AutoencoderKL& vae);

// The condition tokens [batch, (height / 2f) (width / 2f), 4C + 4f^2] for an init image and mask
// of any size (Lanczos-resized to width x height first, as diffusers' processors do). Draws the
// masked picture's posterior sample from `generator`. vae_tiling encodes in tiles.
Tensor flux_fill_condition(const models::AutoencoderKL& vae, Generator& generator,
                           const io::Image& init, const io::Image& mask, int64_t width,
                           int64_t height, int64_t batch, bool vae_tiling);

}  // namespace zflow::pipeline
