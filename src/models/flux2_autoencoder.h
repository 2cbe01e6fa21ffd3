// The FLUX.2 autoencoder (diffusers AutoencoderKLFlux2) with the latent normalisation FLUX.2's
// pipelines wrap around it: FLUX.1's KL autoencoder (models/autoencoder_kl.h) with 32 latent
// channels and 1x1 quant convs, whose latents are patchified 2x2 (128 channels at 1/16 of the
// image size) and normalised with the checkpoint's BatchNorm running statistics
// (bn.running_mean / bn.running_var, eps 1e-4; affine-free, eval mode). The transformer works
// on those normalised, patchified latents (facts/flux.md section 4.2).
// Reference: diffusers 0.42.1 models/autoencoders/autoencoder_kl_flux2.py and
// pipelines/flux2/pipeline_flux2_klein.py (_encode_vae_image, _patchify_latents,
// _unpatchify_latents, the end of __call__).
#pragma once

#include <filesystem>
#include <optional>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/autoencoder_kl.h"
#include "models/placement.h"

namespace zflow::models {

// diffusers _patchify_latents: latents [B, C, H, W] (H, W even) -> [B, 4C, H/2, W/2], channel
// c * 4 + ph * 2 + pw holding pixel (2h + ph, 2w + pw) of channel c.
Tensor flux2_patchify_latents(const Tensor& latents);
// The inverse, [B, 4C, h, w] -> [B, C, 2h, 2w] (diffusers _unpatchify_latents).
Tensor flux2_unpatchify_latents(const Tensor& latents);

class Flux2Autoencoder {
 public:
  // `running_mean` and `running_var` hold 4 x the vae's latent channels values (any float
  // dtype, any device); `eps` is the BatchNorm eps.
  Flux2Autoencoder(AutoencoderKL vae, const Tensor& running_mean, const Tensor& running_var,
                   float eps);

  const AutoencoderKL& vae() const { return vae_; }
  // Pixels per latent token side: the autoencoder's 2^(levels - 1) times the patch's 2.
  int64_t scale_factor() const;
  int64_t latent_channels() const { return 4 * vae_.config().latent_channels; }  // patchified

  // The normalised latent [B, 4 x latent, H/f, W/f] of image[B, 3, H, W] in [-1, 1] (H, W
  // multiples of scale_factor()): the posterior mean (diffusers' sample_mode="argmax"),
  // patchified, then (x - mean) / sqrt(var + eps). float32 on the CPU.
  Tensor encode(const Tensor& image) const;
  // The image [B, 3, f h, f w] (about [-1, 1]) of a normalised latent z[B, 4 x latent, h, w]:
  // z * sqrt(var + eps) + mean, unpatchified, decoded (in 1024-pixel tiles when `tiled`, as
  // diffusers' enable_tiling(); models/vae_tiling.h). float32 on the CPU.
  Tensor decode(const Tensor& z, bool tiled = false) const;

  // The BatchNorm normalisation alone, on float32 [B, 4 x latent, h, w] latents on the CPU.
  Tensor normalize(const Tensor& patchified) const;
  Tensor denormalize(const Tensor& z) const;

 private:
  AutoencoderKL vae_;
  std::vector<float> mean_, std_;  // per patchified channel; std = sqrt(var + eps) in float32
};

// FLUX.2's BatchNorm eps (diffusers' batch_norm_eps default, BFL's autoencoder).
inline constexpr float kFlux2BatchNormEps = 1e-4f;

// Opens the autoencoder from a diffusers vae/ folder (config.json with _class_name
// AutoencoderKLFlux2 + safetensors), a model folder holding vae/, or a single file in either
// layout (diffusers names, or BFL / ComfyUI names: FLUX.1's with encoder.quant_conv and
// decoder.post_quant_conv; a `vae.` or `first_stage_model.` prefix is stripped). Without a
// config the autoencoder's is inferred from the weights and eps is kFlux2BatchNormEps. The
// statistics must be there: a FLUX.1 autoencoder (no bn.*) is an Error that says so.
Flux2Autoencoder load_flux2_autoencoder(const std::filesystem::path& path,
                                        const Placement& placement = {});
Flux2Autoencoder load_flux2_autoencoder(const io::WeightStore& weights,
                                        const std::optional<AutoencoderKLConfig>& config,
                                        float eps = kFlux2BatchNormEps,
                                        const Placement& placement = {});

}  // namespace zflow::models
