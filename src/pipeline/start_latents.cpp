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

std::pair<int, int> checked_image_size(std::string_view family, std::optional<int> width,
                                       std::optional<int> height, const io::Image* init,
                                       const io::Image* mask, int64_t multiple) {
  if (mask && !init) fail("[{}] a mask needs an init image to inpaint", family);
  const int w = width.value_or(init ? init->width : 1024);
  const int h = height.value_or(init ? init->height : 1024);
  ZF_CHECK(w > 0 && h > 0 && w % multiple == 0 && h % multiple == 0,
           "[{}] size {}x{}: width and height must be positive multiples of {}", family, w, h,
           multiple);
  if (init && (init->width != w || init->height != h))
    fail("[{}] the init image is {}x{} but the requested size is {}x{}; resize the image first",
         family, init->width, init->height, w, h);
  if (mask && (mask->width != w || mask->height != h))
    fail("[{}] the mask is {}x{} but the image is {}x{}; they must have the same size", family,
         mask->width, mask->height, w, h);
  return {w, h};
}

}  // namespace zflow::pipeline
