// FLUX.1 Canny-dev and Depth-dev, BFL's "FLUX Tools" (diffusers 0.42.1 FluxControlPipeline): not
// ControlNets but fine-tunes whose transformer reads, beside each packed noisy token (4C
// features), the same token of the control image (an edge or depth map the user made):
//   Lanczos-resized to the output size, VAE-encoded as a posterior sample drawn BEFORE the start
//   latents (one draw for the whole batch, each image its own noise), normalised, packed (4C).
// So such a transformer takes 8C input features (128 for the release) and puts out 4C.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "core/tensor.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"

namespace zflow::pipeline {

// The input features a Canny / Depth transformer has for this VAE: 8C.
int64_t flux_control_in_channels(const models::AutoencoderKL& vae);

// The condition tokens [batch, (height / 2f) (width / 2f), 4C] for a control image of any size.
// Draws the posterior samples from `generator`. vae_tiling encodes in tiles.
Tensor flux_control_condition(const models::AutoencoderKL& vae, Generator& generator,
                              const io::Image& control, int64_t width, int64_t height,
                              int64_t batch, bool vae_tiling);

}  // namespace zflow::pipeline
