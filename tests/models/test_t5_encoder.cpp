// T5Encoder against transformers' T5EncoderModel on the tiny random T5 v1.1 config of
// tools/golden/make_t5_encoder.py (d_model 32, 3 blocks, 4 heads of 12, d_ff 56, vocab 200,
// 32 buckets up to distance 128, bf16-rounded weights run in float32): last_hidden_state with
// no attention mask, as FLUX runs it, for lengths 1..300 (300 reaches past max_distance and
// ends in padding). Tolerance: max |got - want| / max |want| <= 1e-4, the project's
// fp32-CPU-versus-fp32-torch bound (DESIGN.md): both sides compute in float32 and differ only
// in summation order through 3 blocks.
#include "models/t5_encoder.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::relative_error;

using models::T5Encoder;
using models::T5EncoderConfig;

const std::filesystem::path kFolder = test::fixture("t5/tiny_diffusers/text_encoder_2");
const std::filesystem::path kComfy = test::fixture("t5/t5_tiny_comfy_weights.safetensors");
const std::filesystem::path kIo = test::fixture("t5/t5_tiny_diffusers_io.safetensors");
const std::vector<int> kLengths = {1, 9, 40, 300};
constexpr double kTolerance = 1e-4;
const std::string kTinySummary =
    "vocab 200 d_model 32 heads 4 d_kv 12 d_ff 56 layers 3 buckets 32 max_distance 128 eps 1e-06";

void expect_matches_transformers(const T5Encoder& encoder) {
  const io::SafetensorsFile g = io::SafetensorsFile::open(kIo);
  for (int n : kLengths) {
    const Tensor t = g.tensor("ids_len" + std::to_string(n));
    const std::vector<int32_t> ids(t.data<int32_t>(), t.data<int32_t>() + t.numel());
    ASSERT_EQ(ids.size(), static_cast<size_t>(n));
    EXPECT_LE(relative_error(encoder.encode(ids), g.tensor("out_len" + std::to_string(n))),
              kTolerance)
        << "length " << n;
  }
}

TEST(T5Encoder, FixtureIsCurrent) {
  const io::SafetensorsFile g = io::SafetensorsFile::open(kIo);
  EXPECT_EQ(g.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(g.metadata().at("generator"), "tools/golden/make_t5_encoder.py");
}

TEST(T5Encoder, DiffusersFolderMatchesTransformers) {
  const T5Encoder encoder = models::load_t5_encoder(kFolder);
  EXPECT_EQ(encoder.config().summary(), kTinySummary);  // read from config.json
  expect_matches_transformers(encoder);
}

TEST(T5Encoder, IndexFileLoadsWithItsConfig) {
  const T5Encoder encoder = models::load_t5_encoder(kFolder / "model.safetensors.index.json");
  EXPECT_EQ(encoder.config().summary(), kTinySummary);
}

// ComfyUI's single file (shared.weight + encoder.*), no config: inferred from the shapes.
TEST(T5Encoder, ComfyFileMatchesTransformers) {
  const T5Encoder encoder = models::load_t5_encoder(kComfy);
  EXPECT_EQ(encoder.config().summary(), kTinySummary);
  expect_matches_transformers(encoder);
}

// A combined checkpoint with a prefix, and the embedding only as encoder.embed_tokens.weight.
TEST(T5Encoder, PrefixedEmbedTokensLayoutMatches) {
  const io::WeightStore store =
      io::WeightStore::open(kComfy).renamed([](const std::string& n) -> std::optional<std::string> {
        return "text_encoders.t5xxl.transformer." +
               (n == "shared.weight" ? std::string("encoder.embed_tokens.weight") : n);
      });
  expect_matches_transformers(models::load_t5_encoder(store));
}

// transformers' _relative_position_bucket(bidirectional=True, 32, 128) at hand-checked points:
// |d| < 8 exact, sign in the upper half, log-spaced 8..15 up to 128, clamped past it.
TEST(T5Encoder, RelativePositionBuckets) {
  auto b = [](int64_t d) { return models::t5_relative_position_bucket(d, 32, 128); };
  EXPECT_EQ(b(0), 0);
  EXPECT_EQ(b(-7), 7);
  EXPECT_EQ(b(7), 23);
  EXPECT_EQ(b(-8), 8);
  EXPECT_EQ(b(-16), 10);  // 8 + log(2)/log(16)*8 = 10
  EXPECT_EQ(b(-127), 15);
  EXPECT_EQ(b(-1000), 15);
  EXPECT_EQ(b(1000), 31);
}

TEST(T5Encoder, Errors) {
  const T5Encoder encoder = models::load_t5_encoder(kComfy);
  EXPECT_THROW(encoder.encode(std::vector<int32_t>{}), Error);
  EXPECT_THROW(encoder.encode(std::vector<int32_t>{200}), Error);
  EXPECT_THROW(T5EncoderConfig::from_json(R"({"feed_forward_proj": "relu"})", "cfg"), Error);
  T5EncoderConfig wrong = encoder.config();
  wrong.d_ff = 64;
  EXPECT_THROW(models::load_t5_encoder(kComfy, wrong), Error);
}

}  // namespace
}  // namespace zflow
