// Z-Image Omni's condition images as diffusers 0.42.1's ZImageOmniPipeline prepares them: each
// is checked and prepared as a FLUX.2 reference (flux2_references.h: sides of 64 pixels or more,
// aspect ratio at most 8; past 1024 x 1024 pixels Lanczos to about the output's area when a size
// is given, else to about 1024 x 1024; centre-cropped to multiples of 16); the crop is encoded by
// the VAE from pixels rounded to bfloat16 (the pipeline calls vae.encode(image.bfloat16())), its
// posterior mean normalised; the uncropped picture goes through SigLIP 2's processor and tower.
// Without a requested size the output takes the last condition image's cropped size.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "models/siglip2_vision.h"
#include "models/zimage_dit.h"

namespace zflow::pipeline {

// The output's width x height for these condition images and the requested sides; checks the
// images (errors name them by number).
std::pair<int, int> zimage_omni_size(const std::vector<io::Image>& images, std::optional<int> width,
                                     std::optional<int> height, int64_t multiple);

// The transformer's inputs for the condition images; `siglip` may be null for a transformer
// without SigLIP.
std::vector<models::ZImageOmniCondition> zimage_omni_conditions(
    const std::vector<io::Image>& images, std::optional<int> width, std::optional<int> height,
    const models::AutoencoderKL& vae, const models::Siglip2VisionModel* siglip,
    const models::Siglip2ProcessorConfig& processor, bool vae_tiling);

}  // namespace zflow::pipeline
