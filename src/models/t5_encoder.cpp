#include "models/t5_encoder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "models/config_json.h"
#include "models/parameters.h"

namespace zflow::models {
namespace {

constexpr const char* kFinalNorm = "encoder.final_layer_norm.weight";

void validate(const T5EncoderConfig& c, const std::string& source) {
  ZF_CHECK(c.vocab_size >= 1 && c.d_model >= 1 && c.d_kv >= 1 && c.d_ff >= 1 && c.num_heads >= 1,
           "[t5] {}: vocab_size, d_model, d_kv, d_ff and num_heads must be positive", source);
  ZF_CHECK(c.num_layers >= 1, "[t5] {}: num_layers {} < 1", source, c.num_layers);
  ZF_CHECK(c.relative_attention_num_buckets >= 4 && c.relative_attention_num_buckets % 2 == 0,
           "[t5] {}: relative_attention_num_buckets {} is not an even number >= 4", source,
           c.relative_attention_num_buckets);
  ZF_CHECK(c.relative_attention_max_distance > c.relative_attention_num_buckets / 4,
           "[t5] {}: relative_attention_max_distance {} is not above num_buckets / 4", source,
           c.relative_attention_max_distance);
  ZF_CHECK(c.layer_norm_epsilon > 0.0f, "[t5] {}: layer_norm_epsilon {} is not positive", source,
           c.layer_norm_epsilon);
}

std::string layer_prefix(int i) {
  return fmt::format("encoder.block.{}.layer.", i);
}

// One T5Block of the encoder (self-attention, then the gated-GELU feed-forward).
T5Encoder::Layer bind_layer(ParameterBinder& bind, const T5EncoderConfig& c, int i) {
  const std::string p = layer_prefix(i);
  const int64_t d = c.d_model, inner = c.inner_dim(), ff = c.d_ff;
  T5Encoder::Layer l;
  l.q = bind(p + "0.SelfAttention.q.weight", {inner, d});
  l.k = bind(p + "0.SelfAttention.k.weight", {inner, d});
  l.v = bind(p + "0.SelfAttention.v.weight", {inner, d});
  l.o = bind(p + "0.SelfAttention.o.weight", {d, inner});
  l.attn_norm = bind(p + "0.layer_norm.weight", {d});
  l.wi_0 = bind(p + "1.DenseReluDense.wi_0.weight", {ff, d});
  l.wi_1 = bind(p + "1.DenseReluDense.wi_1.weight", {ff, d});
  l.wo = bind(p + "1.DenseReluDense.wo.weight", {d, ff});
  l.ffn_norm = bind(p + "1.layer_norm.weight", {d});
  return l;
}

std::string embedding_name(const io::WeightStore& w) {
  return w.contains("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
}

}  // namespace

std::string T5EncoderConfig::summary() const {
  return fmt::format(
      "vocab {} d_model {} heads {} d_kv {} d_ff {} layers {} buckets {} max_distance {} eps {}",
      vocab_size, d_model, num_heads, d_kv, d_ff, num_layers, relative_attention_num_buckets,
      relative_attention_max_distance, layer_norm_epsilon);
}

T5EncoderConfig T5EncoderConfig::from_json(const std::string& json_text,
                                           const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "t5", source);
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return false;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[t5] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
    return true;
  };
  std::string text;
  if (read("model_type", text) && text != "t5" && text != "umt5")
    fail("[t5] {}: model_type is \"{}\", expected \"t5\"", source, text);
  T5EncoderConfig c;
  read("vocab_size", c.vocab_size);
  read("d_model", c.d_model);
  read("d_kv", c.d_kv);
  read("d_ff", c.d_ff);
  read("num_layers", c.num_layers);
  read("num_heads", c.num_heads);
  read("relative_attention_num_buckets", c.relative_attention_num_buckets);
  read("relative_attention_max_distance", c.relative_attention_max_distance);
  read("layer_norm_epsilon", c.layer_norm_epsilon);
  if (read("feed_forward_proj", text) && text != "gated-gelu")
    fail("[t5] {}: feed_forward_proj is \"{}\"; only T5 v1.1's \"gated-gelu\" is implemented",
         source, text);
  if (read("dense_act_fn", text) && text != "gelu_new")
    fail("[t5] {}: dense_act_fn is \"{}\", expected \"gelu_new\"", source, text);
  validate(c, source);
  return c;
}

T5EncoderConfig T5EncoderConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "t5"), path.string());
}

T5EncoderConfig T5EncoderConfig::infer_from_weights(const io::WeightStore& w) {
  const std::string source = w.description();
  auto dims = [&](const std::string& name) {
    const Tensor t = w.get(name);
    ZF_CHECK(t.ndim() == 2, "[t5] {}: '{}' has shape {}, expected rank 2", w.source_of(name), name,
             shape_str(t.shape()));
    return t.shape();
  };
  T5EncoderConfig c;
  const Shape embed = dims(embedding_name(w));
  c.vocab_size = embed[0];
  c.d_model = embed[1];
  const Shape bias = dims("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  c.relative_attention_num_buckets = static_cast<int>(bias[0]);
  c.num_heads = bias[1];
  const int64_t q_rows = dims("encoder.block.0.layer.0.SelfAttention.q.weight")[0];
  ZF_CHECK(q_rows % c.num_heads == 0, "[t5] {}: q rows {} are not a multiple of {} heads", source,
           q_rows, c.num_heads);
  c.d_kv = q_rows / c.num_heads;
  c.d_ff = dims("encoder.block.0.layer.1.DenseReluDense.wi_0.weight")[0];
  c.num_layers = 0;
  while (w.contains(fmt::format("encoder.block.{}.layer.0.layer_norm.weight", c.num_layers)))
    ++c.num_layers;
  validate(c, source);
  log::info("[t5] {}: no config.json, inferred from weight shapes: {}", source, c.summary());
  return c;
}

int t5_relative_position_bucket(int64_t relative_position, int num_buckets, int max_distance) {
  // transformers T5Attention._relative_position_bucket with bidirectional=True.
  const int half = num_buckets / 2;
  int bucket = relative_position > 0 ? half : 0;
  const int64_t n = relative_position < 0 ? -relative_position : relative_position;
  const int max_exact = half / 2;
  if (n < max_exact) return bucket + static_cast<int>(n);
  // float32 as torch computes it: log(n / max_exact) / log(max_distance / max_exact) * span,
  // the divisor a Python float (double) that the float32 tensor op rounds to float32.
  const float ratio = static_cast<float>(n) / static_cast<float>(max_exact);
  const float divisor = static_cast<float>(
      std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)));
  const float scaled = std::log(ratio) / divisor * static_cast<float>(half - max_exact);
  const int large = std::min(max_exact + static_cast<int>(scaled), half - 1);
  return bucket + large;
}

T5Encoder::T5Encoder(const T5EncoderConfig& config, const io::WeightStore& w,
                     const Placement& placement)
    : config_(config), placement_(placement) {
  validate(config_, w.description());
  const std::string extra =
      fmt::format("encoder.block.{}.layer.0.layer_norm.weight", config_.num_layers);
  ZF_CHECK(!w.contains(extra),
           "[t5] {}: holds '{}', past num_layers {}: the config is not this model's",
           w.description(), extra, config_.num_layers);
  const std::vector<ParameterSpec> used = bind_weights(w);
  // The token embedding stays in host memory wherever the layers run (0.26 GB in bf16 on the GPU
  // for a lookup of a few rows).
  const std::string on_host[] = {embedding_name(w)};
  if (placement_.offload) {
    std::vector<std::string> prefixes;
    for (int i = 0; i < config_.num_layers; ++i) prefixes.push_back(layer_prefix(i));
    offload_ = std::make_shared<OffloadedBlocks>(w, used, prefixes, placement_, "t5");
    bind_weights(offload_->place_resident(w, placement_, "t5", on_host));
  } else if (placement_.device != Device::CPU) {
    bind_weights(place_weights(w, used, placement_, "t5", on_host));
  }
}

std::vector<ParameterSpec> T5Encoder::bind_weights(const io::WeightStore& w) {
  ParameterBinder bind(&w, "config: " + config_.summary());
  const int64_t d = config_.d_model;
  shared_ = bind(embedding_name(w), {config_.vocab_size, d});
  relative_attention_bias_ =
      bind("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
           {config_.relative_attention_num_buckets, config_.num_heads})
          .to_f32_vector();
  layers_.clear();
  for (int i = 0; i < config_.num_layers; ++i) layers_.push_back(bind_layer(bind, config_, i));
  final_layer_norm_ = bind(kFinalNorm, {d});
  return bind.take_specs();
}

Tensor T5Encoder::position_bias(int64_t length) const {
  const int64_t heads = config_.num_heads;
  const std::vector<float>& table = relative_attention_bias_;
  std::vector<float> bias(static_cast<size_t>(heads * length * length));
  for (int64_t q = 0; q < length; ++q) {
    for (int64_t k = 0; k < length; ++k) {
      const int bucket = t5_relative_position_bucket(k - q, config_.relative_attention_num_buckets,
                                                     config_.relative_attention_max_distance);
      for (int64_t h = 0; h < heads; ++h)
        bias[static_cast<size_t>((h * length + q) * length + k)] =
            table[static_cast<size_t>(bucket * heads + h)];
    }
  }
  return Tensor::from_f32({1, heads, length, length}, bias);
}

// Unscaled scores plus the shared bias, softmax, values. Written with matmul + add + softmax,
// which materialises the [heads, L, L] scores: 64 x 512 x 512 floats (64 MiB) per block at
// FLUX's length, acceptable for now; a fused attention with an additive bias would avoid it.
Tensor T5Encoder::attention(const Layer& l, const Tensor& x, const Tensor& bias) const {
  const int64_t len = x.size(0), heads = config_.num_heads, dk = config_.d_kv;
  auto heads_of = [&](const Tensor& w) {
    return ops::linear(x, w).view({1, len, heads, dk}).permute({0, 2, 1, 3}).contiguous();
  };
  const Tensor q = heads_of(l.q), k = heads_of(l.k), v = heads_of(l.v);
  const Tensor scores = ops::add(ops::matmul(q, k.permute({0, 1, 3, 2}).contiguous()), bias);
  const Tensor out = ops::matmul(ops::softmax(scores), v);  // [1, heads, L, dk]
  return ops::linear(out.permute({0, 2, 1, 3}).contiguous().view({len, heads * dk}), l.o);
}

Tensor T5Encoder::encode(std::span<const int32_t> ids) const {
  ZF_CHECK(!ids.empty(), "[t5] encode: no tokens");
  for (size_t t = 0; t < ids.size(); ++t)
    ZF_CHECK(ids[t] >= 0 && ids[t] < config_.vocab_size,
             "[t5] encode: token {} has id {}, outside the vocabulary [0, {})", t, ids[t],
             config_.vocab_size);
  const float eps = config_.layer_norm_epsilon;
  Tensor x = placement_.activation(ops::embedding(shared_, ids));  // [L, d_model]
  const Tensor bias = placement_.activation(position_bias(static_cast<int64_t>(ids.size())));
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::optional<BlockLease> lease;
    const Layer l = block_to_run(offload_.get(), lease, i, layers_[i], [&](ParameterBinder& bind) {
      return bind_layer(bind, config_, static_cast<int>(i));
    });
    x = ops::add(x, attention(l, ops::rms_norm(x, l.attn_norm, eps), bias));
    const Tensor h = ops::rms_norm(x, l.ffn_norm, eps);
    const Tensor gate = ops::gelu(ops::linear(h, l.wi_0), ops::GeluKind::kTanh);
    x = ops::add(x, ops::linear(ops::mul(gate, ops::linear(h, l.wi_1)), l.wo));
  }
  return float32_on(ops::rms_norm(x, final_layer_norm_, eps), Device::CPU);
}

io::WeightStore t5_encoder_weights(const io::WeightStore& weights) {
  return weights.module_weights(kFinalNorm, "T5 encoder checkpoint");
}

T5Encoder load_t5_encoder(const io::WeightStore& weights,
                          const std::optional<T5EncoderConfig>& config,
                          const Placement& placement) {
  const io::WeightStore named = t5_encoder_weights(weights);
  return T5Encoder(config ? *config : T5EncoderConfig::infer_from_weights(named), named, placement);
}

T5Encoder load_t5_encoder(const std::filesystem::path& path,
                          const std::optional<T5EncoderConfig>& config,
                          const Placement& placement) {
  const io::WeightStore weights = io::WeightStore::open(path);
  if (config) return load_t5_encoder(weights, config, placement);
  if (const auto json = io::component_config_json(path))
    return load_t5_encoder(weights, T5EncoderConfig::from_json_file(*json), placement);
  return load_t5_encoder(weights, std::nullopt, placement);
}

}  // namespace zflow::models
