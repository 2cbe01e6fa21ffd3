#include "pipeline/start_latents.h"

#include "core/error.h"
#include "pipeline/flow_euler.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

StartLatents start_latents(const models::AutoencoderKL& vae, Generator& generator,
                           const Shape& shape, float start_sigma, const io::Image* init,
                           const io::Image* mask) {
  ZF_CHECK(shape.size() == 4, "[pipeline] latent shape {} is not [B, C, h, w]", shape_str(shape));
  ZF_CHECK(init || !mask, "[pipeline] a mask needs an init image");
  if (!init) return {generator.randn(shape), std::nullopt};
  const auto posterior = vae.encode(image_to_tensor(*init));
  const Tensor image_latents = repeat_batch(
      vae.normalize_latent(models::AutoencoderKL::sample(posterior, generator)), shape[0]);
  ZF_CHECK(image_latents.shape() == shape, "[pipeline] the init image encodes to {}, expected {}",
           shape_str(image_latents.shape()), shape_str(shape));
  const Tensor noise = generator.randn(shape);
  StartLatents s{scale_noise(image_latents, noise, start_sigma), std::nullopt};
  if (mask)
    s.inpaint = FlowInpaint{preprocess_mask(*mask, shape[2], shape[3]), image_latents, noise};
  return s;
}

}  // namespace zflow::pipeline
