#include "pipeline/zimage_control.h"

#include "backend/ops.h"
#include "core/error.h"
#include "models/vae_tiling.h"
#include "pipeline/image_tensor.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {
namespace {

// normalize(VAE.encode(image).mode()): the posterior mean, as retrieve_latents(sample_mode=
// "argmax") takes it.
Tensor encoded_mode(const models::AutoencoderKL& vae, const Tensor& image, bool vae_tiling) {
  const auto posterior = models::encode_image(vae, image, vae_tiling);
  return vae.normalize_latent(posterior.mean);
}

Tensor one_minus(const Tensor& m) {
  return ops::add_scalar(ops::mul_scalar(m, -1.0f), 1.0f);
}

}  // namespace

Tensor zimage_control_context(const models::AutoencoderKL& vae, int64_t control_in_dim,
                              const io::Image& control, const io::Image* init,
                              const io::Image* mask, int width, int height, bool vae_tiling) {
  ZF_CHECK((init == nullptr) == (mask == nullptr),
           "[controlnet] inpainting with a ControlNet needs both an init image and a mask");
  const Tensor latent =
      encoded_mode(vae, image_to_tensor(fit_image(control, width, height)), vae_tiling);
  const int64_t channels = latent.size(1), h = latent.size(2), w = latent.size(3);
  const int64_t inpaint_dim = 2 * channels + 1;
  if (mask) {
    ZF_CHECK(control_in_dim == inpaint_dim,
             "[controlnet] inpainting needs a ControlNet of {} input channels (the 2.x Union "
             "files); this one takes {}",
             inpaint_dim, control_in_dim);
    const io::Image fitted_mask = fit_image(*mask, width, height);
    const Tensor keep_pixels = one_minus(preprocess_mask(fitted_mask, height, width));
    const Tensor pixels = image_to_tensor(fit_image(*init, width, height));
    const Tensor masked = ops::mul(pixels, ops::concat({keep_pixels, keep_pixels, keep_pixels}, 1));
    const Tensor keep = one_minus(preprocess_mask(fitted_mask, h, w));
    return ops::concat({latent, keep, encoded_mode(vae, masked, vae_tiling)}, 1);
  }
  ZF_CHECK(control_in_dim >= channels,
           "[controlnet] a ControlNet of {} input channels for a {}-channel latent", control_in_dim,
           channels);
  if (control_in_dim == channels) return latent;
  return ops::concat({latent, Tensor::zeros({1, control_in_dim - channels, h, w}, DType::F32)}, 1);
}

}  // namespace zflow::pipeline
