// Flux2Autoencoder against diffusers 0.42.1 AutoencoderKLFlux2 and Flux2KleinPipeline on the tiny
// random config of tools/golden/make_flux2_autoencoder.py (levels of 16 and 32 channels, one
// resnet per encoder level, 8 groups, 32 latent channels, quant convs, random BatchNorm
// statistics): an image's normalised, patchified latent as _encode_vae_image makes it, and the
// image the pipeline decodes from a normalised latent. Tolerance: max |got - want| / max |want|
// <= 1e-4, the project's fp32-CPU-versus-torch bound (DESIGN.md).
#include "models/flux2_autoencoder.h"

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::Flux2Autoencoder;
using test::error_of;
using test::relative_error;

const std::filesystem::path kFolder = test::fixture("flux2_autoencoder/tiny_diffusers/vae");
const std::filesystem::path kOriginal =
    test::fixture("flux2_autoencoder/flux2_autoencoder_tiny_original_ae.safetensors");
const std::filesystem::path kIo =
    test::fixture("flux2_autoencoder/flux2_autoencoder_tiny_diffusers_io.safetensors");

constexpr double kTolerance = 1e-4;

void expect_matches_pipeline(const Flux2Autoencoder& ae) {
  const io::SafetensorsFile io = io::SafetensorsFile::open(kIo);
  EXPECT_EQ(ae.scale_factor(), 4);  // 2 levels, then the 2x2 patch
  EXPECT_EQ(ae.latent_channels(), 128);
  const double enc = relative_error(ae.encode(io.tensor("image")), io.tensor("encoded"));
  const double dec = relative_error(ae.decode(io.tensor("z")), io.tensor("decoded"));
  EXPECT_LE(enc, kTolerance);
  EXPECT_LE(dec, kTolerance);
  ::testing::Test::RecordProperty("encode", std::to_string(enc));
  ::testing::Test::RecordProperty("decode", std::to_string(dec));
}

models::AutoencoderKLConfig tiny_config() {
  return models::AutoencoderKLConfig::from_json_file(kFolder / "config.json");
}

TEST(Flux2Autoencoder, FixtureIsCurrent) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  EXPECT_EQ(file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(file.metadata().at("generator"), "tools/golden/make_flux2_autoencoder.py");
}

TEST(Flux2Autoencoder, ConfigOfTheFlux2Class) {
  const models::AutoencoderKLConfig c = tiny_config();
  EXPECT_EQ(c.latent_channels, 32);
  EXPECT_TRUE(c.use_quant_conv);
  EXPECT_TRUE(c.use_post_quant_conv);
  EXPECT_EQ(c.scaling_factor, 1.0f);
  EXPECT_EQ(c.shift_factor, 0.0f);
  // The class's own defaults apply to absent fields.
  EXPECT_EQ(
      models::AutoencoderKLConfig::from_json(R"({"_class_name": "AutoencoderKLFlux2"})", "x.json")
          .latent_channels,
      32);
  EXPECT_NE(error_of([] {
              models::AutoencoderKLConfig::from_json(
                  R"({"_class_name": "AutoencoderKLFlux2", "block_out_channels": [128, 256],
                      "decoder_block_out_channels": [96, 192]})",
                  "x.json");
            }).find("decoder_block_out_channels"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              models::AutoencoderKLConfig::from_json(R"({"_class_name": "VQModel"})", "x.json");
            }).find("AutoencoderKLFlux2"),
            std::string::npos);
}

TEST(Flux2Autoencoder, DiffusersFolderMatchesPipeline) {
  expect_matches_pipeline(models::load_flux2_autoencoder(kFolder));
  expect_matches_pipeline(models::load_flux2_autoencoder(kFolder.parent_path()));  // model folder
}

// BFL / ComfyUI names (encoder.quant_conv, decoder.post_quant_conv, bn.*), bare and under
// ComfyUI's `vae.` prefix; the tiny group count is not in the weights, so the config is given.
TEST(Flux2Autoencoder, OriginalLayoutMatchesPipeline) {
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  ASSERT_TRUE(original.contains("encoder.quant_conv.weight"));
  expect_matches_pipeline(models::load_flux2_autoencoder(original, tiny_config()));
  const io::WeightStore prefixed = original.renamed(
      [](const std::string& n) -> std::optional<std::string> { return "vae." + n; });
  expect_matches_pipeline(models::load_flux2_autoencoder(prefixed, tiny_config()));
}

// diffusers _patchify_latents: output channel c * 4 + ph * 2 + pw at (h, w) holds input channel
// c at (2h + ph, 2w + pw); _unpatchify_latents inverts it.
TEST(Flux2Autoencoder, PatchifyOrderAndRoundTrip) {
  Generator g(3);
  const Tensor latents = g.randn({2, 3, 4, 6});
  const Tensor p = models::flux2_patchify_latents(latents);
  ASSERT_EQ(p.shape(), (Shape{2, 12, 2, 3}));
  const auto in = latents.to_f32_vector(), out = p.to_f32_vector();
  // sample 1, channel 2, ph 1, pw 0, at (1, 2) <- input (3, 4) of channel 2.
  EXPECT_EQ(out[((1 * 12 + 2 * 4 + 1 * 2 + 0) * 2 + 1) * 3 + 2], in[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
  EXPECT_EQ(models::flux2_unpatchify_latents(p).to_f32_vector(), in);
  EXPECT_THROW(models::flux2_patchify_latents(g.randn({1, 3, 5, 6})), Error);
}

// z * std + mean, then back: two float32 roundings of a sum whose mean term may be ~100 times the
// scaled z (stds down to 0.01 against means near 1), so ~100 ulp of z: 1e-5.
TEST(Flux2Autoencoder, NormalisationRoundTrips) {
  const Flux2Autoencoder ae = models::load_flux2_autoencoder(kFolder);
  Generator g(4);
  const Tensor z = g.randn({1, 128, 2, 3});
  EXPECT_LE(relative_error(ae.normalize(ae.denormalize(z)), z), 1e-5);
}

TEST(Flux2Autoencoder, Flux1AutoencoderAndBadImagesAreRejected) {
  const auto flux1 = test::fixture("autoencoder/tiny_diffusers/vae");
  EXPECT_NE(error_of([&] { models::load_flux2_autoencoder(flux1); }).find("bn.running_mean"),
            std::string::npos);
  const Flux2Autoencoder ae = models::load_flux2_autoencoder(kFolder);
  EXPECT_NE(error_of([&] {
              ae.encode(Tensor::zeros({1, 3, 16, 18}, DType::F32));
            }).find("multiples of 4"),
            std::string::npos);
  EXPECT_THROW(ae.decode(Tensor::zeros({1, 64, 2, 2}, DType::F32)), Error);
}

}  // namespace
}  // namespace zflow
