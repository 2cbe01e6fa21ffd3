// The ControlNet input of a Z-Image request, as diffusers 0.42.1 prepares it
// (ZImageControlNetPipeline, ZImageControlNetInpaintPipeline; facts: zimage.md section 6.3):
//   control latent = normalize(VAE.encode(control image).mode())       [1, 16, h, w]
//   16-channel ControlNets take it as it is; 33-channel ones (2.x) take
//     [control latent ; 17 zero channels]                                 (plain control)
//     [control latent ; 1 - mask ; normalize(VAE.encode(init * (1 - mask)).mode())]  (inpaint)
//   where mask is the binarised mask (white = repaint) at full size for the pixels and
//   nearest-downsampled to the latent grid for its channel.
// Images of another size are first Lanczos-resized to the output's, as the image processor does.
// The encodes take the posterior's mode, so no random numbers are drawn.
#pragma once

#include "io/image.h"
#include "models/autoencoder_kl.h"

namespace zflow::pipeline {

// [1, control_in_dim, height / f, width / f] float32. init and mask are both given (inpaint) or
// both null; inpaint needs a 33-channel ControlNet (an error says so otherwise).
Tensor zimage_control_context(const models::AutoencoderKL& vae, int64_t control_in_dim,
                              const io::Image& control, const io::Image* init,
                              const io::Image* mask, int width, int height, bool vae_tiling);

}  // namespace zflow::pipeline
