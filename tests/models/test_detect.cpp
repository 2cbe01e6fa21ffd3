// Architecture and layout detection on the golden fixtures of every model zflow loads.
#include <gmock/gmock.h>

#include "io/weight_store.h"
#include "models/autoencoder_kl.h"
#include "models/detect.h"
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
