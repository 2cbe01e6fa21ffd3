// SigLIP's vision tower and FLUX.1 Redux's image embedder against transformers'
// SiglipVisionModel / SiglipImageProcessor and diffusers' ReduxImageEncoder on the tiny random
// models of tools/golden/make_flux_redux.py (hidden 32, 2 layers, 2 heads, 16 patches of 14
// pixels; bf16 weights computed in float32 on both sides). Tolerances: the processor's pixels
// equal to 1e-6 (Pillow-exact bicubic, then the same affine map in float64); the hidden state and
// the embeds max |got - want| / max |want| <= 1e-5: both sides compute in float32 through two
// layers and measure 4.7e-7 apart, while exact GELU in place of the tanh form is 1.4e-4 off.
#include "models/siglip_vision.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "models/flux_redux.h"
#include "test_util.h"

namespace zflow::models {
namespace {

using test::relative_error;

const std::filesystem::path kDir = test::fixture("flux_redux");
constexpr double kTolerance = 1e-5;

const io::SafetensorsFile& golden() {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kDir / "flux_redux_siglip_io.safetensors");
  return file;
}

TEST(SiglipVision, PixelsAsTheImageProcessorMakesThem) {
  const Tensor got = siglip_pixels(io::read_image(kDir / "flux_redux_tiny_image.png"), 56);
  const Tensor want = golden().tensor("pixel_values");
  EXPECT_LE(relative_error(got.view({1, 3, 56, 56}), want), 1e-6);
}

TEST(SiglipVision, LastHiddenStateMatchesTransformers) {
  const SiglipVisionModel model = load_siglip_vision_model(kDir / "tiny_redux" / "image_encoder");
  EXPECT_EQ(model.config().patches(), 16);
  const Tensor pixels = golden().tensor("pixel_values").to(DType::F32).view({3, 56, 56});
  const Tensor got = model.encode(pixels);
  EXPECT_LE(relative_error(got.view({1, 16, 32}), golden().tensor("last_hidden_state")),
            kTolerance);
}

TEST(SiglipVision, ReduxEmbedsMatchDiffusers) {
  const ReduxImageEncoder redux = load_redux_image_encoder(kDir / "tiny_redux" / "image_embedder");
  EXPECT_EQ(redux.image_dim(), 32);
  EXPECT_EQ(redux.text_dim(), 8);
  const Tensor states = golden().tensor("last_hidden_state").to(DType::F32).view({16, 32});
  EXPECT_LE(relative_error(redux.embed(states).view({1, 16, 8}), golden().tensor("image_embeds")),
            kTolerance);
}

TEST(SiglipVision, ErrorsNameTheProblem) {
  EXPECT_THROW(SiglipVisionConfig::from_json(R"({"hidden_act": "relu"})", "x.json"), Error);
  EXPECT_THROW(
      SiglipVisionConfig::from_json(R"({"hidden_size": 30, "num_attention_heads": 4})", "x.json"),
      Error);
  const SiglipVisionModel model = load_siglip_vision_model(kDir / "tiny_redux" / "image_encoder");
  EXPECT_THROW(model.encode(Tensor::zeros({3, 28, 28}, DType::F32)), Error);
  // The Redux embedder is not a SigLIP tower.
  EXPECT_THROW(load_siglip_vision_model(kDir / "tiny_redux" / "image_embedder"), Error);
  EXPECT_THROW(load_redux_image_encoder(kDir / "tiny_redux" / "image_encoder"), Error);
}

}  // namespace
}  // namespace zflow::models
