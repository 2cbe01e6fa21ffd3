// Tiled VAE decoding and encoding against diffusers' AutoencoderKL on the tiny autoencoder with
// 32-pixel tiles (a 7 x 10 latent: 3 x 4 tiles, 8 pixels blended; make_vae_tiling.py).
// Tolerance: fp32 against fp32, 1e-4 of the output's scale, as the untiled VAE goldens.
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "models/vae_tiling.h"
#include "test_util.h"

namespace zflow::models {
namespace {

TEST(VaeTiling, EqualsDiffusersTiledDecode) {
  const auto golden = io::SafetensorsFile::open(
      test::fixture("autoencoder/vae_tiny_diffusers_tiled_decode.safetensors"));
  const AutoencoderKL vae = load_autoencoder_kl(test::fixture("autoencoder/tiny_diffusers/vae"));
  const Tensor latent = golden.tensor("latent").to(DType::F32);
  const Tensor tiled = decode_raw_tiled(vae, latent, 32);
  EXPECT_LE(test::relative_error(tiled, golden.tensor("tiled").to(DType::F32)), 1e-4);
  // The tiles are real: the result is not the untiled decode (diffusers' differs from it by ~2.4).
  EXPECT_GT(test::relative_error(tiled, golden.tensor("whole").to(DType::F32)), 1e-2);
  // A latent within one tile decodes whole.
  EXPECT_LE(test::relative_error(decode_raw_tiled(vae, latent, 128),
                                 golden.tensor("whole").to(DType::F32)),
            1e-4);
  EXPECT_THROW(decode_raw_tiled(vae, latent, 12), Error);
}

// A 56 x 80 image in 32-pixel tiles (stride 24; latent tiles of 4 blended over 1 cell): the
// encoder's raw outputs are blended, then the posterior taken (logvar clamped after the blend).
TEST(VaeTiling, EncodeEqualsDiffusersTiledEncode) {
  const auto golden = io::SafetensorsFile::open(
      test::fixture("autoencoder/vae_tiny_diffusers_tiled_decode.safetensors"));
  const AutoencoderKL vae = load_autoencoder_kl(test::fixture("autoencoder/tiny_diffusers/vae"));
  const auto posterior = encode_tiled(vae, golden.tensor("image").to(DType::F32), 32);
  EXPECT_LE(test::relative_error(posterior.mean, golden.tensor("encoded_mean").to(DType::F32)),
            1e-4);
  EXPECT_LE(test::relative_error(posterior.logvar, golden.tensor("encoded_logvar").to(DType::F32)),
            1e-4);
}

}  // namespace
}  // namespace zflow::models
