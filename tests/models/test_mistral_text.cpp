// Mistral's text model (FLUX.2-dev's text encoder) through Qwen3TextEncoder with qk_norm off,
// against transformers' Mistral3ForConditionalGeneration on the tiny random model of
// tools/golden/make_mistral_text.py (hidden 48, 4 layers, 4 heads of 16 over 2 kv heads, vocab
// 1000, float32, a Pixtral vision tower beside it): hidden states (1, 2, 3) of left-padded rows,
// as Flux2Pipeline encodes. Tolerance: max |got - want| / max |want| <= 1e-4, the project's
// fp32-CPU-versus-fp32-torch bound (DESIGN.md).
#include <string>

#include "io/safetensors.h"
#include "io/weight_store.h"
#include "models/qwen3.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::relative_error;

const std::filesystem::path kFolder = test::fixture("mistral/tiny_diffusers/text_encoder");
const std::filesystem::path kIo = test::fixture("mistral/mistral_tiny_diffusers_io.safetensors");
constexpr int32_t kPadId = 11;
constexpr double kTolerance = 1e-4;

std::vector<int32_t> int_values(const Tensor& t) {
  const Tensor c = t.contiguous();
  return {c.data<int32_t>(), c.data<int32_t>() + c.numel()};
}

TEST(MistralText, ConfigComesFromTheMistral3TextConfig) {
  const models::Qwen3Config c = models::Qwen3Config::from_json_file(kFolder / "config.json");
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.hidden_size, 48);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_key_value_heads, 2);
  EXPECT_EQ(c.rope_theta, 1e4);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  const std::string sliding = test::error_of([] {
    models::Qwen3Config::from_json(R"({"model_type": "mistral", "sliding_window": 4096})", "cfg");
  });
  EXPECT_NE(sliding.find("sliding_window is 4096"), std::string::npos) << sliding;
  const std::string no_text = test::error_of(
      [] { models::Qwen3Config::from_json(R"({"model_type": "mistral3"})", "cfg"); });
  EXPECT_NE(no_text.find("text_config"), std::string::npos) << no_text;
}

TEST(MistralText, LeftPaddedTapsMatchTransformers) {
  const models::Qwen3TextEncoder encoder =
      models::load_qwen3_text_encoder(kFolder, std::nullopt, {}, {1, 2, 3});
  EXPECT_EQ(encoder.output_features(), 3 * 48);
  const io::SafetensorsFile g = io::SafetensorsFile::open(kIo);
  const Tensor ids = g.tensor("ids"), want = g.tensor("out");
  const std::vector<int32_t> lengths = int_values(g.tensor("lengths"));
  const int64_t length = ids.size(1);
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const std::vector<int32_t> row = int_values(ids.select(0, b));
    const std::span<const int32_t> real =
        std::span(row).last(static_cast<size_t>(lengths[static_cast<size_t>(b)]));
    const Tensor got = encoder.encode_left_padded(real, length, kPadId);
    EXPECT_LE(relative_error(got.select(0, 0), want.select(0, b)), kTolerance)
        << "row " << b << " with " << real.size() << " real ids";
  }
  EXPECT_NE(
      test::error_of([&] { encoder.encode_left_padded({}, length, kPadId); }).find("0 ids to pad"),
      std::string::npos);
}

// A ComfyUI-style file holds the language model alone, without a config: Mistral's is told
// from Qwen3's by the missing q/k norms, and Mistral-Small's head width (128) and theta stand
// in for what the weights do not show; the tiny model's 16-wide heads then fail by name.
TEST(MistralText, WeightsWithoutConfigAreReadAsMistralSmall) {
  const io::WeightStore named =
      models::qwen3_model_weights(io::WeightStore::open(kFolder / "model.safetensors"));
  const std::string message =
      test::error_of([&] { models::Qwen3Config::infer_from_weights(named); });
  EXPECT_NE(message.find("not multiples of head_dim 128 (Mistral-Small's"), std::string::npos)
      << message;
  EXPECT_EQ(models::Qwen3Config::mistral_small().rope_theta, 1e9);
}

}  // namespace
}  // namespace zflow
