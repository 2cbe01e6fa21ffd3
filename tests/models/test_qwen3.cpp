// Qwen3TextEncoder against transformers' Qwen3Model on the tiny random config of
// tools/golden/make_qwen3.py (hidden 48, 4 layers, 4 heads of 16 over 2 kv heads, vocab
// 1000, float32 weights): hidden_states[-2] for lengths 1..100 and for a padded batch run
// as Z-Image's pipeline runs it. Tolerance: max |got - want| / max |want| <= 1e-4, the
// project's fp32-CPU-versus-fp32-torch bound (DESIGN.md): both sides compute in float32
// and differ only in summation order (GEMM blocking, softmax) through 3 layers; the RoPE
// tables themselves agree to a few float32 ulps (RopeTablesMatchTransformers).
#include "models/qwen3.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer_fixture.h"

namespace zflow {
namespace {

using test::cosine;
using test::relative_error;

using models::Qwen3Config;
using models::Qwen3TextEncoder;

const std::filesystem::path kFolder = test::fixture("qwen3/tiny_diffusers/text_encoder");
const std::filesystem::path kComfy = test::fixture("qwen3/qwen3_tiny_comfy_weights.safetensors");
const std::filesystem::path kIo = test::fixture("qwen3/qwen3_tiny_diffusers_io.safetensors");
const std::vector<int> kLengths = {1, 7, 32, 33, 100};

constexpr double kTolerance = 1e-4;

struct Golden {
  io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  Tensor get(const std::string& name) const { return file.tensor(name); }
  std::vector<int32_t> ids(const std::string& name) const {
    const Tensor t = get(name);
    return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
  }
};

void expect_matches_transformers(const Qwen3TextEncoder& encoder) {
  const Golden g;
  for (int n : kLengths) {
    const std::string len = std::to_string(n);
    const std::vector<int32_t> ids = g.ids("ids_len" + len);
    ASSERT_EQ(ids.size(), static_cast<size_t>(n));
    EXPECT_LE(relative_error(encoder.encode(ids), g.get("out_len" + len)), kTolerance)
        << "length " << n;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

io::WeightStore prefixed(const io::WeightStore& store, const std::string& prefix) {
  return store.renamed(
      [&](const std::string& n) -> std::optional<std::string> { return prefix + n; });
}

TEST(Qwen3, FixtureIsCurrent) {
  const Golden g;
  EXPECT_EQ(g.file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(g.file.metadata().at("generator"), "tools/golden/make_qwen3.py");
}

TEST(Qwen3, DiffusersFolderMatchesTransformers) {
  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(kFolder);
  EXPECT_EQ(encoder.config().summary(),
            "vocab 1000 hidden 48 intermediate 80 layers 4 heads 4 kv heads 2 head_dim 16 "
            "rope_theta 1000000 eps 1e-06");  // read from config.json
  expect_matches_transformers(encoder);
}

TEST(Qwen3, IndexFileLoadsWithItsConfig) {
  const Qwen3TextEncoder encoder =
      models::load_qwen3_text_encoder(kFolder / "model.safetensors.index.json");
  EXPECT_EQ(encoder.config().num_hidden_layers, 4);
  const Golden g;
  EXPECT_LE(relative_error(encoder.encode(g.ids("ids_len33")), g.get("out_len33")), kTolerance);
}

// ComfyUI's single file: `model.` names, here cut to the layers hidden_states[-2] needs (no
// last layer, no final norm), with no config: the layer count is inferred as one more.
TEST(Qwen3, ComfyCutFileMatchesTransformers) {
  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(kComfy);
  EXPECT_EQ(encoder.config().summary(),
            "vocab 1000 hidden 48 intermediate 80 layers 4 heads 4 kv heads 2 head_dim 16 "
            "rope_theta 1000000 eps 1e-06");
  expect_matches_transformers(encoder);
}

// A complete Qwen3ForCausalLM-style file: `model.` names, the last layer, the final norm and
// an lm_head, which the encoder leaves alone.
TEST(Qwen3, CompleteCausalLmFileMatchesTransformers) {
  const io::WeightStore folder = io::WeightStore::open(kFolder);
  io::WeightStore file = prefixed(folder, "model.");
  file.add("lm_head.weight", folder.get("embed_tokens.weight"), "complete.safetensors");
  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(file);
  EXPECT_EQ(encoder.config().num_hidden_layers, 4);
  expect_matches_transformers(encoder);
}

TEST(Qwen3, CombinedCheckpointPrefixIsStripped) {
  const io::WeightStore folder = io::WeightStore::open(kFolder);
  io::WeightStore checkpoint = prefixed(folder, "text_encoders.qwen3_4b.transformer.model.");
  checkpoint.add("model.diffusion_model.x_embedder.weight", Tensor::zeros({4}, DType::F32));
  const io::WeightStore named = models::qwen3_model_weights(checkpoint);
  EXPECT_EQ(named.names(), folder.names());
}

// The pipeline pads both prompts to one length, runs them together with the attention mask
// and keeps the mask == 1 rows: encode_batch must give the same rows, and the same as each
// prompt alone (1e-5: the same float32 math, only GEMM blocking may differ with batch size).
TEST(Qwen3, PaddedBatchMatchesPipelineAndSingleRuns) {
  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(kFolder);
  const Golden g;
  const std::vector<std::vector<int32_t>> ids = {g.ids("batch_ids_0"), g.ids("batch_ids_1")};
  ASSERT_NE(ids[0].size(), ids[1].size());
  const std::vector<Tensor> batch = encoder.encode_batch(ids);
  ASSERT_EQ(batch.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_LE(relative_error(batch[i], g.get("batch_out_" + std::to_string(i))), kTolerance);
    EXPECT_LE(relative_error(batch[i], encoder.encode(ids[i])), 1e-5);
  }
  EXPECT_TRUE(encoder.encode_batch({}).empty());
}

// FLUX.2 klein's use: ids padded with the pad id to one length, every row (padding included) of
// hidden states (1, 2, 3) stacked on the features. The padded rows see the real tokens only.
TEST(Qwen3, TappedHiddenStatesOfPaddedSequencesMatchTransformers) {
  const Qwen3TextEncoder encoder =
      models::load_qwen3_text_encoder(kFolder, std::nullopt, {}, {1, 2, 3});
  EXPECT_EQ(encoder.output_features(), 3 * 48);
  const Golden g;
  const Tensor ids = g.get("klein_ids");
  const std::vector<int32_t> lengths32 = g.ids("klein_lengths");
  const std::vector<int64_t> lengths(lengths32.begin(), lengths32.end());
  std::vector<std::vector<int32_t>> rows;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const Tensor row = ids.select(0, b).contiguous();
    rows.emplace_back(row.data<int32_t>(), row.data<int32_t>() + row.numel());
  }
  ASSERT_LT(lengths[1], static_cast<int64_t>(rows[1].size()));
  EXPECT_LE(relative_error(encoder.encode_padded(rows, lengths), g.get("klein_out")), kTolerance);
  // The taps of the real rows are what encode gives for the prompt alone.
  const Tensor alone = encoder.encode(std::span(rows[1]).first(static_cast<size_t>(lengths[1])));
  EXPECT_LE(relative_error(alone, g.get("klein_out").select(0, 1).slice(0, 0, lengths[1])), 1e-4);
  // hidden_states[4] would need the final norm; 0 is the embedding itself.
  for (int tap : {0, 4})
    EXPECT_NE(error_of([&] {
                models::load_qwen3_text_encoder(kFolder, std::nullopt, {}, {tap});
              }).find("hidden state " + std::to_string(tap)),
              std::string::npos);
  EXPECT_NE(
      error_of([&] { encoder.encode_padded(rows, std::vector<int64_t>{40}); }).find("real lengths"),
      std::string::npos);
}

// transformers' own cos/sin for 100 positions, head_dim 16, theta 1e6. Angles reach 99
// rad, where one float32 ulp of the angle is 8e-6; the tables agree far closer, so inv_freq
// and the float32 angle are rounded exactly as transformers rounds them.
TEST(Qwen3, RopeTablesMatchTransformers) {
  const Golden g;
  const Qwen3Config config = Qwen3Config::from_json_file(kFolder / "config.json");
  const models::RopeTables rope = models::qwen3_rope_tables(config, 100);
  ASSERT_EQ(rope.cos.shape(), (Shape{1, 100, 8}));
  // transformers repeats the D/2 frequencies: cat(freqs, freqs).
  const Tensor want_cos = g.get("rope_cos").slice(1, 0, 8).unsqueeze(0);
  const Tensor want_sin = g.get("rope_sin").slice(1, 0, 8).unsqueeze(0);
  EXPECT_EQ(g.get("rope_cos").slice(1, 8, 16).to_f32_vector(),
            g.get("rope_cos").slice(1, 0, 8).to_f32_vector());
  const auto max_abs = [](const Tensor& a, const Tensor& b) {
    const auto x = a.to_f32_vector(), y = b.to_f32_vector();
    double m = 0.0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - y[i]));
    return m;
  };
  EXPECT_LE(max_abs(rope.cos, want_cos), 1e-6);
  EXPECT_LE(max_abs(rope.sin, want_sin), 1e-6);
}

// Real checkpoints are bf16: the same model with its weights rounded to bf16 must stay
// close to the float32 reference (bf16 keeps 8 bits of mantissa: ~0.4% per weight, which
// averages out over the dot products; cosine 0.999 leaves room for that and catches a
// kernel that misreads 16-bit weights).
TEST(Qwen3, Bf16WeightsStayCloseToFloat32Reference) {
  const io::WeightStore f32 = io::WeightStore::open(kFolder);
  io::WeightStore bf16;
  for (const std::string& name : f32.names()) bf16.add(name, f32.get(name).to(DType::BF16));
  const Qwen3TextEncoder encoder(Qwen3Config::from_json_file(kFolder / "config.json"), bf16);
  const Golden g;
  for (int n : kLengths) {
    const std::string len = std::to_string(n);
    EXPECT_GE(cosine(encoder.encode(g.ids("ids_len" + len)), g.get("out_len" + len)), 0.999)
        << "length " << n;
  }
}

TEST(Qwen3, WrongShapeNamesTheTensor) {
  const io::WeightStore good = io::WeightStore::open(kFolder);
  io::WeightStore bad = good.renamed([](const std::string& n) -> std::optional<std::string> {
    if (n == "layers.2.self_attn.k_proj.weight") return std::nullopt;
    return n;
  });
  bad.add("layers.2.self_attn.k_proj.weight", Tensor::zeros({64, 48}, DType::F32),
          "bad.safetensors");
  const auto config = Qwen3Config::from_json_file(kFolder / "config.json");
  EXPECT_EQ(error_of([&] { Qwen3TextEncoder(config, bad); }),
            "[load] bad.safetensors: 'layers.2.self_attn.k_proj.weight' has shape [64, 48], "
            "expected [32, 48] (config: vocab 1000 hidden 48 intermediate 80 layers 4 heads 4 kv "
            "heads 2 head_dim 16 rope_theta 1000000 eps 1e-06)");
}

// A config with fewer layers than the checkpoint would pick the wrong hidden state.
TEST(Qwen3, CheckpointWithMoreLayersThanTheConfigIsRejected) {
  auto config = Qwen3Config::from_json_file(kFolder / "config.json");
  config.num_hidden_layers = 3;
  const io::WeightStore weights = io::WeightStore::open(kFolder);
  EXPECT_NE(error_of([&] {
              Qwen3TextEncoder(config, weights);
            }).find("holds 'layers.3.input_layernorm.weight', past num_hidden_layers 3"),
            std::string::npos);
}

TEST(Qwen3, MissingTensorNamesItAndTheFile) {
  const io::WeightStore cut =
      io::WeightStore::open(kComfy).renamed([](const std::string& n) -> std::optional<std::string> {
        if (n == "model.layers.1.mlp.up_proj.weight") return std::nullopt;
        return n;
      });
  const std::string message = error_of([&] { models::load_qwen3_text_encoder(cut); });
  EXPECT_NE(message.find("no tensor 'layers.1.mlp.up_proj.weight'"), std::string::npos) << message;
  EXPECT_NE(message.find("qwen3_tiny_comfy_weights.safetensors"), std::string::npos) << message;
}

TEST(Qwen3, NotAQwen3CheckpointIsNamed) {
  io::WeightStore other;
  other.add("decoder.conv_in.weight", Tensor::zeros({1}, DType::F32));
  EXPECT_NE(
      error_of([&] { models::load_qwen3_text_encoder(other); }).find("no 'embed_tokens.weight'"),
      std::string::npos);
}

TEST(Qwen3, IdOutsideVocabularyIsNamed) {
  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(kFolder);
  const std::vector<int32_t> ids = {5, 1000};
  EXPECT_EQ(error_of([&] { encoder.encode(ids); }),
            "[qwen3] encode: sequence 0 token 1 has id 1000, outside the vocabulary [0, 1000)");
  EXPECT_NE(error_of([&] {
              encoder.encode_batch({{1}, {}});
            }).find("sequence 1 has no tokens"),
            std::string::npos);
}

TEST(Qwen3, ParameterListMatchesTransformersStateDict) {
  const auto config = Qwen3Config::from_json_file(kFolder / "config.json");
  const io::WeightStore saved = io::WeightStore::open(kFolder);
  const auto params = models::qwen3_parameters(config, config.num_hidden_layers);
  ASSERT_EQ(params.size(), saved.size());
  for (const auto& p : params) EXPECT_EQ(saved.get(p.name).shape(), p.shape) << p.name;
  // The encoder's list: no last layer, no final norm; what the cut ComfyUI file holds.
  const io::WeightStore comfy = models::qwen3_model_weights(io::WeightStore::open(kComfy));
  const auto needed = models::qwen3_parameters(config, config.encoder_layers());
  ASSERT_EQ(needed.size(), comfy.size());
  for (const auto& p : needed) EXPECT_EQ(comfy.get(p.name).shape(), p.shape) << p.name;
}

// Qwen3-4B has 4,022,468,096 parameters (facts/zimage.md section 3.1); the encoder leaves
// out the last layer (100,930,816) and the final norm (2560).
TEST(Qwen3, DefaultConfigIsQwen3_4B) {
  const Qwen3Config config;
  const auto total = [](const std::vector<models::ParameterSpec>& params) {
    int64_t n = 0;
    for (const auto& p : params) n += shape_numel(p.shape);
    return n;
  };
  EXPECT_EQ(total(models::qwen3_parameters(config, 36)), 4'022'468'096);
  EXPECT_EQ(total(models::qwen3_parameters(config, config.encoder_layers())), 3'921'534'720);
}

// A transformers 4 config (Qwen3-4B as Z-Image's text_encoder/config.json has it).
TEST(Qwen3, ConfigFromTransformers4Json) {
  const Qwen3Config c = Qwen3Config::from_json(
      R"({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "vocab_size": 151936,
          "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36,
          "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
          "rope_theta": 1000000, "rope_scaling": null, "rms_norm_eps": 1e-06,
          "tie_word_embeddings": true, "attention_bias": false, "use_sliding_window": false,
          "sliding_window": null, "max_window_layers": 36, "hidden_act": "silu",
          "torch_dtype": "bfloat16"})",
      "config.json");
  EXPECT_EQ(c.summary(), Qwen3Config{}.summary());
}

TEST(Qwen3, ConfigRejectsWhatIsNotImplemented) {
  const auto error = [](const std::string& json) {
    return error_of([&] { Qwen3Config::from_json(json, "c.json"); });
  };
  EXPECT_EQ(error(R"({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}})"),
            "[qwen3] c.json: rope_scaling.rope_type is \"yarn\"; only \"default\" RoPE is "
            "implemented");
  EXPECT_EQ(error(R"({"rope_parameters": {"rope_type": "default", "partial_rotary_factor": 0.5}})"),
            "[qwen3] c.json: rope_parameters.partial_rotary_factor is 0.5; only full rotary is "
            "implemented");
  EXPECT_NE(error(R"({"use_sliding_window": true})").find("use_sliding_window"), std::string::npos);
  EXPECT_NE(error(R"({"attention_bias": true})").find("attention_bias"), std::string::npos);
  EXPECT_NE(error(R"({"hidden_act": "gelu"})").find("hidden_act"), std::string::npos);
  EXPECT_NE(error(R"({"model_type": "llama"})").find("model_type"), std::string::npos);
  EXPECT_NE(error(R"({"num_key_value_heads": 3})").find("does not divide"), std::string::npos);
  EXPECT_NE(error(R"({"hidden_size": "big"})").find("'hidden_size' has the wrong type"),
            std::string::npos);
}

TEST(Qwen3, ConfigInferredFromCompleteAndCutWeights) {
  Qwen3Config config;
  config.vocab_size = 50;
  config.hidden_size = 24;
  config.intermediate_size = 40;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 6;
  config.num_key_value_heads = 3;
  config.head_dim = 8;
  io::WeightStore complete;
  for (const auto& p : models::qwen3_parameters(config, 3))
    complete.add(p.name, Tensor::zeros(p.shape, DType::BF16));
  EXPECT_EQ(Qwen3Config::infer_from_weights(complete).summary(), config.summary());
  EXPECT_EQ(Qwen3Config::infer_from_weights(models::qwen3_random_weights(config, DType::BF16, 3))
                .summary(),
            config.summary());
}

// Real Qwen3 ids (chat-template specials 151644/151645, CJK text) through a model with the
// real vocab: the fixture keeps only the embedding rows the ids use; the rest stay zero.
// Z-Image's _encode_prompt ran both prompts as one padded batch; so does encode_batch.
TEST(Qwen3, RealVocabularyIdsMatchZImageEncodePrompt) {
  const io::SafetensorsFile sparse = io::SafetensorsFile::open(
      test::fixture("qwen3/qwen3_realvocab_diffusers_sparse_weights.safetensors"));
  io::WeightStore weights;
  for (const io::TensorInfo& info : sparse.tensors())
    if (!info.name.starts_with("embed_tokens.")) weights.add(info.name, sparse.tensor(info.name));
  const Tensor rows = sparse.tensor("embed_tokens.rows");
  const Tensor row_ids = sparse.tensor("embed_tokens.row_ids");
  const int64_t hidden = rows.size(1);
  Tensor table = Tensor::zeros({151936, hidden}, DType::F32);
  const auto values = rows.to_f32_vector();
  for (int64_t r = 0; r < row_ids.numel(); ++r)
    std::copy_n(values.begin() + r * hidden, hidden,
                table.data<float>() + int64_t{row_ids.data<int32_t>()[r]} * hidden);
  weights.add("embed_tokens.weight", table);

  const Qwen3TextEncoder encoder = models::load_qwen3_text_encoder(weights);
  EXPECT_EQ(encoder.config().vocab_size, 151936);
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("qwen3/qwen3_realvocab_pipeline_io.safetensors"));
  std::vector<std::vector<int32_t>> ids;
  for (const char* name : {"ids_0", "ids_1"}) {
    const Tensor t = io.tensor(name);
    ids.emplace_back(t.data<int32_t>(), t.data<int32_t>() + t.numel());
  }
  // The empty negative prompt is the 8 template tokens (facts/zimage.md section 3.3).
  EXPECT_EQ(ids[1], (std::vector<int32_t>{151644, 872, 198, 151645, 198, 151644, 77091, 198}));
  const std::vector<Tensor> out = encoder.encode_batch(ids);
  EXPECT_LE(relative_error(out[0], io.tensor("out_0")), kTolerance);
  EXPECT_LE(relative_error(out[1], io.tensor("out_1")), kTolerance);
}

// zflow's tokenizer gives the pipeline's ids for the fixture's prompts, so the text module
// and this encoder meet on the same ids.
TEST(Qwen3, ZflowTokenizerGivesThePipelineIds) {
  ZF_REQUIRE_ASSET(test::qwen3_tokenizer_json());
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("qwen3/qwen3_realvocab_pipeline_io.safetensors"));
  const auto prompts = nlohmann::json::parse(io.metadata().at("prompts"));
  ASSERT_EQ(prompts.size(), 2u);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Tensor want = io.tensor("ids_" + std::to_string(i));
    const text::PromptTokens tokens =
        text::encode_zimage_prompt(test::qwen3_tokenizer(), prompts[i].get<std::string>(), 48);
    const auto got = tokens.real_ids();
    EXPECT_EQ(std::vector<int32_t>(got.begin(), got.end()),
              std::vector<int32_t>(want.data<int32_t>(), want.data<int32_t>() + want.numel()));
  }
}

TEST(Qwen3, RandomWeightsBindAndRun) {
  Qwen3Config config;
  config.vocab_size = 64;
  config.hidden_size = 32;
  config.intermediate_size = 48;
  config.num_hidden_layers = 3;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 1;
  config.head_dim = 12;
  const Qwen3TextEncoder encoder(config, models::qwen3_random_weights(config, DType::BF16, 7));
  const std::vector<int32_t> ids = {63, 0, 17};
  const Tensor out = encoder.encode(ids);
  EXPECT_EQ(out.shape(), (Shape{3, 32}));
  for (float v : out.to_f32_vector()) ASSERT_TRUE(std::isfinite(v));
}

}  // namespace
}  // namespace zflow
