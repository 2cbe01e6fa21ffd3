// The latents a flow pipeline starts from, as diffusers' prepare_latents draws them for the
// Z-Image and FLUX.1 text-to-image, img2img and inpaint pipelines (0.42.1), in the unpacked
// layout [B, C, h, w]:
//   text-to-image: noise = randn(shape, generator)
//   img2img / inpaint: z = normalize(posterior sample(VAE.encode(init image), generator)) FIRST,
//     repeated over the batch, then noise = randn(shape) from the same generator, and the start
//     sigma_s * noise + (1 - sigma_s) * z; inpaint keeps z, the noise and the latent-size mask
//     for the per-step blend. (The inpaint pipelines then encode the masked image, a further
//     draw that nothing uses and nothing draws after, so it is skipped.)
// The batch of B images is one noise tensor [B, ...], as num_images_per_prompt does it.
#pragma once

#include <optional>
#include <string_view>
#include <utility>

#include "core/rng.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "pipeline/flow_denoise.h"
#include "pipeline/masked_content.h"
#include "pipeline/variation_seed.h"

namespace zflow::pipeline {

// An image at width x height as diffusers' VaeImageProcessor.resize makes it: PIL Lanczos, in the
// mode the image arrived in (a mask is resized before it is turned grey and binarised); the image
// itself when it already has that size.
io::Image fit_image(const io::Image& image, int64_t width, int64_t height);

// How the init image becomes latents: a posterior sample drawn from the generator (the FLUX.1 and
// Z-Image img2img / inpaint pipelines) or the posterior's mode, no draw (FLUX.1 Kontext
// inpainting).
enum class InitLatents { Sample, Mode };

struct StartLatents {
  Tensor latents;                      // [B, C, h, w] float32
  std::optional<FlowInpaint> inpaint;  // set when a mask was given
};

// What the latents start from, besides the noise.
struct StartFrom {
  // The init image (null: text-to-image). Of another size it is first resized to the output's
  // with Pillow's Lanczos, as diffusers' image processor does; vae_tiling encodes it in tiles
  // (models/vae_tiling.h).
  const io::Image* init = nullptr;
  // Or the init latents themselves, normalised [1, C, h, w] (a latent upscaler's): used as they
  // are, no encoding and no draw, as diffusers' img2img takes latents passed as its image.
  const Tensor* init_latents = nullptr;
  // Inpainting's mask (needs init), resized like it. A1111's latent masked content modes start
  // the masked cells from the noise or from zero (pipeline/masked_content.h); the inpaint blend
  // keeps the init image's latents.
  const io::Image* mask = nullptr;
  MaskedContent content = MaskedContent::Original;
  bool vae_tiling = false;
  InitLatents encoding = InitLatents::Sample;
  // Bends the noise (pipeline/variation_seed.h), in the generator's normal math.
  std::optional<VariationSeed> variation;
};

// shape = [B, C, h, w] of the latent grid; start_sigma is schedule.sigmas[0] after the img2img
// cut.
StartLatents start_latents(const models::AutoencoderKL& vae, Generator& generator,
                           const Shape& shape, float start_sigma, const StartFrom& from = {});

// The width x height a request generates at: the given sides, else the init image's rounded down
// to multiples of `multiple` (twice the VAE factor, for the 2x2 patches), else the (Z-Image
// ControlNet) control image's likewise, else 1024. Checked as every family's pipeline needs it:
// positive multiples of `multiple`, and a mask only with an init image. Errors start with
// [family].
std::pair<int, int> checked_image_size(std::string_view family, std::optional<int> width,
                                       std::optional<int> height, const io::Image* init,
                                       const io::Image* mask, int64_t multiple,
                                       const io::Image* control = nullptr);

// The width x height init latents [1, C, h, w] stand for, w and h times `cell` pixels per latent
// cell: checked for the model's `channels`, a grid of whole `multiple`-pixel patches and the
// sides asked for (which may be left unset). Errors start with [family].
std::pair<int, int> init_latents_size(std::string_view family, const Tensor& latents,
                                      std::optional<int> width, std::optional<int> height,
                                      int64_t cell, int64_t channels, int64_t multiple);

}  // namespace zflow::pipeline
