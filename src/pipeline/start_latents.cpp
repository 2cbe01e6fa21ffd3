#include "pipeline/start_latents.h"

#include "core/error.h"
#include "io/image_resize.h"
#include "models/vae_tiling.h"
#include "pipeline/flow_euler.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

io::Image fit_image(const io::Image& image, int64_t width, int64_t height) {
  if (image.width == width && image.height == height) return image;
  return io::resize_image(image, static_cast<int>(width), static_cast<int>(height),
                          io::ResampleFilter::Lanczos);
}

StartLatents start_latents(const models::AutoencoderKL& vae, Generator& generator,
                           const Shape& shape, float start_sigma, const StartFrom& from) {
  ZF_CHECK(shape.size() == 4, "[pipeline] latent shape {} is not [B, C, h, w]", shape_str(shape));
  ZF_CHECK(from.init || !from.mask, "[pipeline] a mask needs an init image");
  ZF_CHECK(!(from.init && from.init_latents), "[pipeline] an init image or init latents, not both");
  const auto noise_of = [&] {
    return varied_noise(generator.randn(shape), from.variation, generator.normal_math());
  };
  if (from.init_latents) {
    const Tensor image_latents = repeat_batch(*from.init_latents, shape[0]);
    ZF_CHECK(image_latents.shape() == shape, "[pipeline] init latents {} do not fit the grid {}",
             shape_str(from.init_latents->shape()), shape_str(shape));
    return {scale_noise(image_latents, noise_of(), start_sigma), std::nullopt};
  }
  if (!from.init) return {noise_of(), std::nullopt};
  const int64_t f = int64_t{1} << (vae.config().levels() - 1);  // pixels per latent cell
  const Tensor image = image_to_tensor(fit_image(*from.init, shape[3] * f, shape[2] * f));
  const auto posterior = models::encode_image(vae, image, from.vae_tiling);
  const Tensor image_latents =
      repeat_batch(vae.normalize_latent(from.encoding == InitLatents::Mode
                                            ? posterior.mean
                                            : models::AutoencoderKL::sample(posterior, generator)),
                   shape[0]);
  ZF_CHECK(image_latents.shape() == shape, "[pipeline] the init image encodes to {}, expected {}",
           shape_str(image_latents.shape()), shape_str(shape));
  const Tensor noise = noise_of();
  if (!from.mask) return {scale_noise(image_latents, noise, start_sigma), std::nullopt};
  Tensor latent_mask =
      preprocess_mask(fit_image(*from.mask, shape[3] * f, shape[2] * f), shape[2], shape[3]);
  const Tensor start = latents_with_masked_content(image_latents, noise, latent_mask, from.content);
  return {scale_noise(start, noise, start_sigma),
          FlowInpaint{std::move(latent_mask), image_latents, noise}};
}

std::pair<int, int> checked_image_size(std::string_view family, std::optional<int> width,
                                       std::optional<int> height, const io::Image* init,
                                       const io::Image* mask, int64_t multiple,
                                       const io::Image* control) {
  if (mask && !init) fail("[{}] a mask needs an init image to inpaint", family);
  const io::Image* source = init ? init : control;
  // Without a size, the init (else control) image's own, rounded down to whole patches as
  // diffusers' get_default_height_width does.
  const auto fit = [&](int side) { return static_cast<int>(side / multiple * multiple); };
  const int w = width.value_or(source ? fit(source->width) : 1024);
  const int h = height.value_or(source ? fit(source->height) : 1024);
  ZF_CHECK(w > 0 && h > 0 && w % multiple == 0 && h % multiple == 0,
           "[{}] size {}x{}: width and height must be positive multiples of {}{}", family, w, h,
           multiple,
           source ? fmt::format(" (the {} image is {}x{})", init ? "init" : "control",
                                source->width, source->height)
                  : std::string());
  return {w, h};
}

std::pair<int, int> init_latents_size(std::string_view family, const Tensor& latents,
                                      std::optional<int> width, std::optional<int> height,
                                      int64_t cell, int64_t channels, int64_t multiple) {
  const Shape& shape = latents.shape();
  ZF_CHECK(shape.size() == 4 && shape[0] == 1 && shape[1] == channels,
           "[{}] init latents {}: expected [1, {}, h, w]", family, shape_str(shape), channels);
  const int64_t w = shape[3] * cell, h = shape[2] * cell;
  ZF_CHECK(w % multiple == 0 && h % multiple == 0,
           "[{}] init latents {} stand for {}x{} pixels, not whole {}-pixel patches", family,
           shape_str(shape), w, h, multiple);
  ZF_CHECK(width.value_or(static_cast<int>(w)) == w && height.value_or(static_cast<int>(h)) == h,
           "[{}] init latents {} stand for {}x{} pixels, but {}x{} was asked for", family,
           shape_str(shape), w, h, width.value_or(static_cast<int>(w)),
           height.value_or(static_cast<int>(h)));
  return {static_cast<int>(w), static_cast<int>(h)};
}

}  // namespace zflow::pipeline
