// Tiled VAE decoding and encoding, as diffusers 0.42.1's AutoencoderKL.tiled_decode and
// _tiled_encode do them, so a 2048² (or
// larger) image decodes with the memory of one tile: the latent is cut into overlapping square
// tiles of tile_sample / 8 cells (stride three quarters of that), each tile is decoded on its own,
// and every tile is blended linearly into its upper and left neighbours over a quarter of the
// tile before the tiles are cropped and joined. The result differs from an untiled decode (each
// tile's GroupNorm sees only that tile), exactly as diffusers' does.
#pragma once

#include "models/autoencoder_kl.h"

namespace zflow::models {

// diffusers' default tile: the VAE config's sample_size (1024 for the FLUX.1 / Z-Image VAE).
inline constexpr int64_t kDefaultVaeTile = 1024;

// Decodes a raw (posterior-space) latent [B, latent, h, w] in tiles of tile_sample pixels (a
// multiple of the VAE's downscale factor). Latents no larger than one tile decode whole, as in
// diffusers.
Tensor decode_raw_tiled(const AutoencoderKL& vae, const Tensor& latent, int64_t tile_sample);

// The posterior of image [B, C, H, W] encoded in tiles of tile_sample pixels, the encoder's raw
// outputs blended before the posterior is taken (diffusers' _tiled_encode). Images no larger than
// one tile encode whole.
AutoencoderKL::Posterior encode_tiled(const AutoencoderKL& vae, const Tensor& image,
                                      int64_t tile_sample);

// The posterior of image [B, C, H, W]: in default tiles when `tiled` (--vae-tiling), else whole.
AutoencoderKL::Posterior encode_image(const AutoencoderKL& vae, const Tensor& image, bool tiled);

// The same for a normalised latent (what the pipelines hold), like AutoencoderKL::decode.
Tensor decode_tiled(const AutoencoderKL& vae, const Tensor& z, int64_t tile_sample);

// Normalised latents decoded: in default tiles when `tiled` (--vae-tiling), else whole.
Tensor decode_latents(const AutoencoderKL& vae, const Tensor& z, bool tiled);

}  // namespace zflow::models
