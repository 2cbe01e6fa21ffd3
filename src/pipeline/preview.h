// Live previews: small pictures of a run's current estimate of its final images, decoded by the
// model's own VAE from the clean-latent estimate the sampling loop reports. The latent grid is
// first averaged down to at most kPreviewCells cells a side, so a preview costs a small decode
// (128 pixels a side with the release VAE) whatever the image size.
#pragma once

#include <functional>

#include "models/autoencoder_kl.h"
#include "pipeline/run_control.h"

namespace zflow::pipeline {

inline constexpr int64_t kPreviewCells = 16;

// `control`, with on_estimate decoding previews for on_preview when the caller asked for them
// (unchanged otherwise). The returned control refers to `vae`, which must outlive it.
RunControl with_previews(const RunControl& control, const models::AutoencoderKL& vae);
// The same with any decoder of the loop's latents to images in about [-1, 1] (FLUX.2's
// normalised, patchified latents).
RunControl with_previews(const RunControl& control,
                         std::function<Tensor(const Tensor& latents)> decode);

// Latents [B, C, h, w] averaged over k x k cells, k = ceil(max(h, w) / max_cells); the last row
// and column of cells may be partial. Float32.
Tensor shrink_latents(const Tensor& latents, int64_t max_cells);

}  // namespace zflow::pipeline
