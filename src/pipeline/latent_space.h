// The latent grid a model hands over (ImageGenerator::generate_latents) and starts from
// (GenerationRequest::init_latents). Models with the same one read each other's latents without a
// VAE round trip: Z-Image was trained on FLUX.1's autoencoder, so a Z-Image draft's latents can be
// repainted by FLUX.1 as they are.
#pragma once

#include <cstdint>
#include <string>

#include "models/autoencoder_kl.h"

namespace zflow::pipeline {

struct LatentSpace {
  int64_t channels = 0;
  int64_t cell = 0;  // pixels per latent cell
  // The normalisation the pipelines apply: latents = (z - shift_factor) * scaling_factor.
  float scaling_factor = 0.0f;
  float shift_factor = 0.0f;

  bool operator==(const LatentSpace&) const = default;
};

// The space of a pipeline whose latents are its autoencoder's, normalised by its config.
LatentSpace latent_space_of(const models::AutoencoderKL& vae);

// "16 channels, 8 pixels a cell, scaling 0.3611, shift 0.1159", for errors.
std::string describe(const LatentSpace& space);

}  // namespace zflow::pipeline
