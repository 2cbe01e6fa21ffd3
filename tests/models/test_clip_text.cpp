// ClipTextModel against transformers' CLIPTextModel on the tiny random config of
// tools/golden/make_clip_text.py (hidden 64, 3 layers, 4 heads of 16, intermediate 96, vocab
// 1000, float32): last_hidden_state and pooler_output for FLUX's padded 77-token shape, a short
// unpadded sequence and a full 77 without EOS. Tolerance: max |got - want| / max |want| <= 1e-4,
// the project's fp32-CPU-versus-fp32-torch bound (DESIGN.md): both sides compute in float32 and
// differ only in summation order (GEMM blocking, softmax, LayerNorm) through 3 layers.
#include "models/clip_text.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::relative_error;

using models::ClipTextConfig;
using models::ClipTextModel;

const std::filesystem::path kFolder = test::fixture("clip/tiny_diffusers/text_encoder");
const std::filesystem::path kIo = test::fixture("clip/clip_tiny_diffusers_io.safetensors");
constexpr int kCases = 3;
constexpr double kTolerance = 1e-4;

std::vector<int32_t> ids_of(const io::SafetensorsFile& file, const std::string& name) {
  const Tensor t = file.tensor(name);
  return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
}

void expect_matches_transformers(const ClipTextModel& model) {
  const io::SafetensorsFile golden = io::SafetensorsFile::open(kIo);
  for (int n = 0; n < kCases; ++n) {
    const std::string i = std::to_string(n);
    const std::vector<int32_t> ids = ids_of(golden, "ids_" + i);
    const models::ClipTextOutput out = model.encode(ids);
    EXPECT_LE(relative_error(out.last_hidden_state, golden.tensor("last_hidden_state_" + i)),
              kTolerance)
        << "case " << n;
    EXPECT_LE(relative_error(out.pooled, golden.tensor("pooled_" + i)), kTolerance) << "case " << n;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ClipText, MatchesTransformersFromTheTextEncoderFolder) {
  const ClipTextModel model = models::load_clip_text_model(kFolder);
  EXPECT_EQ(model.config().num_attention_heads, 4);
  EXPECT_EQ(model.config().hidden_size, 64);
  EXPECT_EQ(model.config().num_hidden_layers, 3);
  expect_matches_transformers(model);
}

TEST(ClipText, MatchesTransformersFromASingleFileWithAGivenConfig) {
  // A lone clip_l.safetensors has no config: the caller gives it (shapes cannot tell 4 heads
  // of 16 from one head of 64).
  const ClipTextConfig config = ClipTextConfig::from_json_file(kFolder / "config.json");
  expect_matches_transformers(models::load_clip_text_model(kFolder / "model.safetensors", config));
}

TEST(ClipText, MatchesTransformersUnderACheckpointPrefixWithExtraTensors) {
  // SD-style combined checkpoints nest CLIP deeper, and CLIPTextModelWithProjection files (and
  // some clip_l.safetensors) carry text_projection, logit_scale and the position_ids buffer.
  const io::WeightStore folder = io::WeightStore::open(kFolder / "model.safetensors");
  const std::string prefix = "cond_stage_model.transformer.";
  io::WeightStore combined = folder.renamed([&](const std::string& n) { return prefix + n; });
  const std::vector<float> projection(64 * 64, 0.5f), scale = {4.6f}, other = {1.0f, 2.0f};
  combined.add(prefix + "text_model.text_projection.weight",
               Tensor::from_f32({64, 64}, projection));
  combined.add(prefix + "logit_scale", Tensor::from_f32({1}, scale));
  combined.add("model.diffusion_model.other.weight", Tensor::from_f32({2}, other));
  expect_matches_transformers(models::load_clip_text_model(
      combined, ClipTextConfig::from_json_file(kFolder / "config.json")));
}

TEST(ClipText, InfersTheShapesOfASingleFile) {
  const ClipTextConfig c = ClipTextConfig::infer_from_weights(
      models::clip_text_weights(io::WeightStore::open(kFolder / "model.safetensors")));
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.intermediate_size, 96);
  EXPECT_EQ(c.num_hidden_layers, 3);
  EXPECT_EQ(c.max_position_embeddings, 77);
  EXPECT_EQ(c.num_attention_heads, 1);  // hidden / 64, CLIP's head size
}

TEST(ClipText, PoolsWhereTransformersDoes) {
  const ClipTextModel model = models::load_clip_text_model(kFolder);
  // eos_token_id 2 (CLIP-L's config): the first largest id, i.e. the first <|endoftext|>.
  const std::vector<int32_t> padded = {49406, 320, 1125, 49407, 49407, 49407};
  EXPECT_EQ(model.pooled_index(padded), 3);
  ClipTextConfig c = model.config();
  c.eos_token_id = 1125;  // any other value: the first occurrence of that id
  const ClipTextModel other(c, models::clip_text_weights(io::WeightStore::open(kFolder)));
  EXPECT_EQ(other.pooled_index(padded), 2);
  EXPECT_EQ(other.pooled_index(std::vector<int32_t>{5, 6}), 0);
}

TEST(ClipText, ErrorsNameTheProblem) {
  const ClipTextModel model = models::load_clip_text_model(kFolder);
  EXPECT_NE(error_of([&] {
              (void)model.encode(std::vector<int32_t>(78, 1));
            }).find("78 tokens, expected 1 to 77"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              (void)model.encode(std::vector<int32_t>{1000});
            }).find("outside the vocabulary"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              (void)ClipTextConfig::from_json(R"({"hidden_act": "gelu"})", "cfg.json");
            }).find("hidden_act is \"gelu\""),
            std::string::npos);
  ClipTextConfig wrong = ClipTextConfig::from_json_file(kFolder / "config.json");
  wrong.intermediate_size = 100;
  EXPECT_NE(error_of([&] {
              (void)models::load_clip_text_model(kFolder, wrong);
            }).find("mlp.fc1.weight' has shape"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow
