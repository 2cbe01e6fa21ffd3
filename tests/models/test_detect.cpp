// Architecture and layout detection on the golden fixtures of every model zflow loads.
#include <gmock/gmock.h>

#include "io/weight_store.h"
#include "models/autoencoder_kl.h"
#include "models/detect.h"
#include "models/flux2_dit.h"
#include "models/flux_dit.h"
#include "test_util.h"

namespace zflow::models {
namespace {

using testing::HasSubstr;

DetectedComponent detect(const std::string& fixture) {
  const auto found = detect_component(io::WeightStore::open(test::fixture(fixture)));
  EXPECT_TRUE(found.has_value()) << fixture;
  return found.value_or(DetectedComponent{});
}

TEST(Detect, EveryModelInEveryLayout) {
  EXPECT_EQ(detect("zimage_dit/tiny_diffusers/transformer").architecture, "z-image transformer");
  EXPECT_EQ(detect("zimage_dit/tiny_diffusers/transformer").layout, "diffusers");
  EXPECT_EQ(detect("zimage_dit/zimage_dit_tiny_original_bf16.safetensors").architecture,
            "z-image transformer");
  EXPECT_THAT(detect("zimage_dit/zimage_dit_tiny_original_bf16.safetensors").layout,
              HasSubstr("original"));
  const DetectedComponent qwen = detect("qwen3/tiny_diffusers/text_encoder");
  EXPECT_EQ(qwen.architecture, "qwen3 text encoder");
  EXPECT_THAT(qwen.config, HasSubstr("hidden 48"));
  EXPECT_EQ(detect("qwen3/qwen3_tiny_comfy_weights.safetensors").architecture,
            "qwen3 text encoder");
  EXPECT_EQ(detect("autoencoder/tiny_diffusers/vae").architecture, "autoencoder kl");
  EXPECT_THAT(detect("autoencoder/autoencoder_tiny_original_ae.safetensors").layout,
              HasSubstr("original"));
  EXPECT_EQ(detect("flux2_autoencoder/tiny_diffusers/vae").architecture, "flux.2 autoencoder kl");
  EXPECT_EQ(detect("flux2_autoencoder/flux2_autoencoder_tiny_original_ae.safetensors").architecture,
            "flux.2 autoencoder kl");
}

// FLUX.1's text encoders, from transformers folders and ComfyUI's single file.
TEST(Detect, ClipAndT5TextEncoders) {
  EXPECT_EQ(detect("clip/tiny_diffusers/text_encoder").architecture, "clip text encoder");
  EXPECT_EQ(detect("t5/tiny_diffusers/text_encoder_2").architecture, "t5 encoder");
  EXPECT_EQ(detect("t5/t5_tiny_comfy_weights.safetensors").architecture, "t5 encoder");
}

// FLUX.1 Redux's parts.
TEST(Detect, ReduxTowerAndEmbedder) {
  const DetectedComponent tower = detect("flux_redux/tiny_redux/image_encoder");
  EXPECT_EQ(tower.architecture, "siglip vision tower");
  EXPECT_EQ(detect("flux_redux/tiny_redux/image_embedder").architecture,
            "flux.1 redux image embedder");
  EXPECT_EQ(detect("flux_redux/tiny_redux/image_embedder").config, "image width 32, text width 8");
}

// ESRGAN upscalers in their three layouts.
TEST(Detect, EsrganUpscalers) {
  for (const auto& [file, layout] : {std::pair{"x4_basicsr", "BasicSR (Real-ESRGAN)"},
                                     {"x4_original", "original ESRGAN"},
                                     {"x4_bsrgan", "BSRGAN / RealSR"}}) {
    const DetectedComponent c = detect(std::string("esrgan/esrgan_") + file + ".safetensors");
    EXPECT_EQ(c.architecture, "esrgan upscaler");
    EXPECT_EQ(c.layout, layout);
    EXPECT_EQ(c.config, "4x ESRGAN, 1 RRDB block, 8 features, growth 32");
  }
  EXPECT_EQ(detect("esrgan/esrgan_x2_basicsr.safetensors").config,
            "2x ESRGAN (unshuffle 2), 2 RRDB blocks, 8 features, growth 32");
}

// Real-ESRGAN's compact upscaler, nested under `params` in a .pth as released, or bare.
TEST(Detect, CompactUpscalers) {
  const DetectedComponent pth = detect("compact_upscaler/compact_x4_params.pth");
  EXPECT_EQ(pth.architecture, "real-esrgan compact upscaler");
  EXPECT_EQ(pth.config, "4x Compact, 2 convs, 8 features");
  EXPECT_EQ(detect("compact_upscaler/compact_x2.safetensors").config,
            "2x Compact, 1 conv, 8 features");
}

TEST(Detect, SpanUpscalers) {
  const DetectedComponent c = detect("span/span_x2_no_norm.pth");
  EXPECT_EQ(c.architecture, "span upscaler");
  EXPECT_EQ(c.config, "2x SPAN, 4 features, no input norm");
}

// Z-Image Omni's transformer and SigLIP 2 tower (a linear patch embedding, not SigLIP's conv).
TEST(Detect, ZImageOmniParts) {
  EXPECT_EQ(detect("zimage_omni/tiny_omni/transformer").architecture, "z-image omni transformer");
  EXPECT_EQ(detect("zimage_omni/tiny_omni/siglip").architecture, "siglip 2 vision tower");
}

// A component's config.json is what `zflow info` shows, where the shapes alone cannot tell (a
// tiny FLUX.1 transformer's head dim leaves axes_dims_rope unknown).
TEST(Detect, ConfigJsonInPlaceOfTheShapes) {
  const std::filesystem::path dir = test::fixture("flux_pipeline/tiny_dev/transformer");
  const auto found = detect_component(io::WeightStore::open(dir), io::component_config_json(dir));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->config, FluxDiTConfig::from_json_file(dir / "config.json").summary() + " (" +
                               (dir / "config.json").string() + ")");
  EXPECT_THAT(found->config, HasSubstr("axes_dims_rope [4, 6, 6]"));
  // A config.json that is not one is reported, not thrown.
  const auto wrong = detect_component(io::WeightStore::open(dir),
                                      test::fixture("flux_pipeline/tiny_dev/vae/config.json"));
  ASSERT_TRUE(wrong.has_value());
  EXPECT_THAT(wrong->config, HasSubstr("vae/config.json"));
}

// A ControlNet file is named as one; its config is read for the released transformer, which the
// tiny file (dim 64) does not fit, and the summary says why.
TEST(Detect, ZImageControlNet) {
  const DetectedComponent cn = detect("zimage_controlnet/zimage_controlnet_tiny_v21.safetensors");
  EXPECT_EQ(cn.architecture, "z-image controlnet");
  EXPECT_THAT(cn.config, HasSubstr("expected [3840, 4 x control_in_dim]"));
}

// A FLUX.1 ControlNet has the transformer's trunk but is named as what it is, from its folder
// (config.json read) or XLabs' own file (its tiny heads of 16 leave the config uninferable).
TEST(Detect, FluxControlNet) {
  const std::filesystem::path dir = test::fixture("flux_controlnet/union");
  const DetectedComponent folder =
      detect_component(io::WeightStore::open(dir), io::component_config_json(dir)).value();
  EXPECT_EQ(folder.architecture, "flux.1 controlnet");
  EXPECT_THAT(folder.layout, HasSubstr("InstantX"));
  EXPECT_THAT(folder.config, HasSubstr("Union of 5 modes"));
  const DetectedComponent xlabs = detect("flux_controlnet/xlabs_original_bf16.safetensors");
  EXPECT_EQ(xlabs.architecture, "flux.1 controlnet");
  EXPECT_THAT(xlabs.layout, HasSubstr("XLabs"));
  EXPECT_THAT(xlabs.config, HasSubstr("config.json"));
}

// LoRA files are named for the model they patch, in their naming; BFL's Canny / Depth kind (a
// widened input with norm scales) as such, a FLUX.2 LoRA (128 inputs of its own) not.
TEST(Detect, Loras) {
  const DetectedComponent control =
      detect("flux_control_lora/flux_control_lora_tiny_bfl.safetensors");
  EXPECT_EQ(control.architecture, "flux.1 canny/depth lora");
  EXPECT_THAT(control.config, HasSubstr("23 up biases, 6 norm scales"));
  EXPECT_THAT(control.config, HasSubstr("widens the input to 128 features"));
  EXPECT_EQ(detect("lora/flux2_lora_bfl.safetensors").architecture, "flux lora");
  const DetectedComponent kohya = detect("lora/zimage_lora_kohya.safetensors");
  EXPECT_EQ(kohya.architecture, "z-image lora");
  EXPECT_EQ(kohya.layout, "kohya");
  EXPECT_EQ(kohya.config, "34 modules, rank 4");
}

TEST(Detect, FluxTransformerInEveryLayout) {
  const DetectedComponent dev = detect("flux_dit/tiny_dev_diffusers/transformer");
  EXPECT_EQ(dev.architecture, "flux.1-dev transformer");
  EXPECT_EQ(dev.layout, "diffusers");
  EXPECT_THAT(dev.config, HasSubstr("config.json"));  // head dim 16: axes not inferable
  EXPECT_THAT(detect("flux_dit/flux_dit_tiny_dev_bfl_bf16.safetensors").layout,
              HasSubstr("original"));
  EXPECT_EQ(detect("flux_dit/flux_dit_tiny_schnell_comfy_bf16.safetensors").architecture,
            "flux.1-schnell transformer");
  // Fill reads 384 features a token and puts out 64.
  EXPECT_EQ(detect("flux_fill_pipeline/tiny_fill/transformer").architecture,
            "flux.1-fill transformer");
  // Canny / Depth read 128 (the control image's latents beside the noisy ones).
  EXPECT_EQ(detect("flux_control_pipeline/tiny_control/transformer").architecture,
            "flux.1-canny/depth transformer");
}

TEST(Detect, Flux2TransformerInEveryLayout) {
  const DetectedComponent dev = detect("flux2_dit/tiny_dev_diffusers/transformer");
  EXPECT_EQ(dev.architecture, "flux.2-dev transformer");
  EXPECT_EQ(dev.layout, "diffusers");
  EXPECT_THAT(dev.config, HasSubstr("config.json"));  // head dim 16: axes not inferable
  EXPECT_THAT(detect("flux2_dit/flux2_dit_tiny_dev_bfl_bf16.safetensors").layout,
              HasSubstr("original"));
  EXPECT_EQ(detect("flux2_dit/flux2_dit_tiny_klein_comfy_bf16.safetensors").architecture,
            "flux.2-klein transformer");
  // A release-shaped klein (head dim 128) gives back every field.
  Flux2DiTConfig small = Flux2DiTConfig::klein_4b();
  small.num_attention_heads = 1;
  small.num_layers = 1;
  small.num_single_layers = 1;
  small.joint_attention_dim = 24;
  const auto found = detect_component(flux2_dit_random_weights(small, DType::BF16, 1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->architecture, "flux.2-klein transformer");
  EXPECT_EQ(found->config, small.summary());
}

// Shapes with the release head dim (128, so the release axes apply) give back every field: a
// small schnell-like config (one head, 1 + 1 blocks) through random weights and detection.
TEST(Detect, FluxConfigFromShapes) {
  FluxDiTConfig small = FluxDiTConfig::schnell();
  small.num_attention_heads = 1;
  small.num_layers = 1;
  small.num_single_layers = 1;
  small.joint_attention_dim = 24;
  small.pooled_projection_dim = 12;
  const auto found = detect_component(flux_dit_random_weights(small, DType::BF16, 1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->architecture, "flux.1-schnell transformer");
  EXPECT_EQ(found->config, small.summary());
}

TEST(Detect, ReleaseAutoencoderConfigFromShapes) {
  const AutoencoderKLConfig release;
  const auto found = detect_component(autoencoder_kl_random_weights(release, DType::BF16, 1));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->config, release.summary());
}

TEST(Detect, UnknownWeightsAreNotRecognised) {
  EXPECT_FALSE(
      detect_component(io::WeightStore::open(test::fixture("safetensors/sharded_transformers")))
          .has_value());
}

}  // namespace
}  // namespace zflow::models
