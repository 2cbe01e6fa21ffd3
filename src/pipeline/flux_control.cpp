#include "pipeline/flux_control.h"

#include "models/flux_dit.h"
#include "models/vae_tiling.h"
#include "pipeline/flow_euler.h"
#include "pipeline/image_tensor.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {

int64_t flux_control_in_channels(const models::AutoencoderKL& vae) {
  return 8 * vae.config().latent_channels;
}

Tensor flux_control_condition(const models::AutoencoderKL& vae, Generator& generator,
                              const io::Image& control, int64_t width, int64_t height,
                              int64_t batch, bool vae_tiling) {
  const Tensor pixels = image_to_tensor(fit_image(control, width, height));  // [1, 3, H, W]
  const auto posterior = models::encode_image(vae, pixels, vae_tiling);
  // diffusers encodes the image repeated `batch` times: the same posterior for each, sampled in
  // one draw of the batch's shape.
  const models::AutoencoderKL::Posterior batched{repeat_batch(posterior.mean, batch),
                                                 repeat_batch(posterior.logvar, batch)};
  return models::flux_pack_latents(
      vae.normalize_latent(models::AutoencoderKL::sample(batched, generator)));
}

}  // namespace zflow::pipeline
