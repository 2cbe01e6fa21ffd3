#include "models/clip_text.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <numeric>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "models/config_json.h"

namespace zflow::models {
namespace {

using Model = ClipTextModel;

using Binder = ParameterBinder;

constexpr const char* kTokenEmbedding = "embeddings.token_embedding.weight";

// Binds everything, in transformers' state-dict order.
void bind_all(Binder& bind, const ClipTextConfig& c, Tensor& token, Tensor& position,
              std::vector<Model::Layer>& layers, Tensor& final_w, Tensor& final_b) {
  const int64_t h = c.hidden_size, inter = c.intermediate_size;
  token = bind(kTokenEmbedding, {c.vocab_size, h});
  position = bind("embeddings.position_embedding.weight", {c.max_position_embeddings, h});
  layers.clear();
  for (int i = 0; i < c.num_hidden_layers; ++i)
    layers.push_back(bind_clip_encoder_layer(bind, fmt::format("encoder.layers.{}.", i), h, inter));
  final_w = bind("final_layer_norm.weight", {h});
  final_b = bind("final_layer_norm.bias", {h});
}

void validate(const ClipTextConfig& c, const std::string& source) {
  ZF_CHECK(c.vocab_size >= 1 && c.hidden_size >= 1 && c.intermediate_size >= 1 &&
               c.max_position_embeddings >= 1 && c.num_hidden_layers >= 1,
           "[clip text] {}: sizes must be positive ({})", source, c.summary());
  ZF_CHECK(c.num_attention_heads >= 1 && c.hidden_size % c.num_attention_heads == 0,
           "[clip text] {}: num_attention_heads {} does not divide hidden_size {}", source,
           c.num_attention_heads, c.hidden_size);
  ZF_CHECK(c.layer_norm_eps > 0.0f, "[clip text] {}: layer_norm_eps {} is not positive", source,
           c.layer_norm_eps);
}

}  // namespace

std::string ClipTextConfig::summary() const {
  return fmt::format(
      "vocab {} hidden {} intermediate {} layers {} heads {} positions {} eps {} eos_token_id {}",
      vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
      max_position_embeddings, layer_norm_eps, eos_token_id);
}

ClipTextConfig ClipTextConfig::from_json(const std::string& json_text, const std::string& source) {
  nlohmann::json j = parse_config_json(json_text, "clip text", source);
  // A full CLIPConfig keeps the text model's fields in text_config.
  if (j.contains("text_config") && j["text_config"].is_object()) j = j["text_config"];
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return false;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[clip text] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
    return true;
  };
  ClipTextConfig c;
  read("vocab_size", c.vocab_size);
  read("hidden_size", c.hidden_size);
  read("intermediate_size", c.intermediate_size);
  read("num_hidden_layers", c.num_hidden_layers);
  read("num_attention_heads", c.num_attention_heads);
  read("max_position_embeddings", c.max_position_embeddings);
  read("layer_norm_eps", c.layer_norm_eps);
  read("eos_token_id", c.eos_token_id);
  std::string act;
  if (read("hidden_act", act) && act != "quick_gelu")
    fail("[clip text] {}: hidden_act is \"{}\"; only quick_gelu (CLIP-L) is implemented", source,
         act);
  validate(c, source);
  return c;
}

ClipTextConfig ClipTextConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "clip text"), path.string());
}

ClipTextConfig ClipTextConfig::infer_from_weights(const io::WeightStore& w) {
  auto dims = [&](const std::string& name) {
    const Tensor t = w.get(name);
    ZF_CHECK(t.ndim() == 2, "[clip text] {}: '{}' has shape {}, expected a matrix",
             w.source_of(name), name, shape_str(t.shape()));
    return t.shape();
  };
  ClipTextConfig c;
  const Shape token = dims(kTokenEmbedding);
  c.vocab_size = token[0];
  c.hidden_size = token[1];
  c.max_position_embeddings = dims("embeddings.position_embedding.weight")[0];
  c.intermediate_size = dims("encoder.layers.0.mlp.fc1.weight")[0];
  int layers = 0;
  while (w.contains(fmt::format("encoder.layers.{}.layer_norm1.weight", layers))) ++layers;
  c.num_hidden_layers = layers;
  ZF_CHECK(c.hidden_size % 64 == 0, "[clip text] {}: hidden size {} is not a multiple of 64",
           w.description(), c.hidden_size);
  c.num_attention_heads = c.hidden_size / 64;
  validate(c, w.description());
  log::info("[clip text] {}: no config.json, inferred from weight shapes: {}", w.description(),
            c.summary());
  return c;
}

std::vector<ParameterSpec> clip_text_parameters(const ClipTextConfig& config) {
  validate(config, "config");
  Binder bind(nullptr, {});
  Tensor a, b, c, d;
  std::vector<Model::Layer> layers;
  bind_all(bind, config, a, b, layers, c, d);
  return bind.take_specs();
}

ClipTextModel::ClipTextModel(const ClipTextConfig& config, const io::WeightStore& weights,
                             const Placement& placement)
    : config_(config), placement_(placement) {
  validate(config_, weights.description());
  const std::string extra =
      fmt::format("encoder.layers.{}.layer_norm1.weight", config_.num_hidden_layers);
  ZF_CHECK(!weights.contains(extra),
           "[clip text] {}: holds '{}', past num_hidden_layers {}: the config is not this model's",
           weights.description(), extra, config_.num_hidden_layers);
  Binder bind(&weights, "config: " + config_.summary());
  bind_all(bind, config_, token_embedding_, position_embedding_, layers_, final_ln_w_, final_ln_b_);
  if (placement_.device == Device::CPU) return;
  const io::WeightStore placed = place_weights(weights, bind.take_specs(), placement_, "clip text");
  Binder bind_placed(&placed, "config: " + config_.summary());
  bind_all(bind_placed, config_, token_embedding_, position_embedding_, layers_, final_ln_w_,
           final_ln_b_);
}

int64_t ClipTextModel::pooled_index(std::span<const int32_t> ids) const {
  int64_t best = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (config_.eos_token_id == 2) {
      if (ids[i] > ids[best]) best = static_cast<int64_t>(i);
    } else if (ids[i] == config_.eos_token_id) {
      return static_cast<int64_t>(i);
    }
  }
  return best;
}

ClipTextOutput ClipTextModel::encode(std::span<const int32_t> ids) const {
  const int64_t l = static_cast<int64_t>(ids.size());
  ZF_CHECK(l >= 1 && l <= config_.max_position_embeddings,
           "[clip text] encode: {} tokens, expected 1 to {}", l, config_.max_position_embeddings);
  for (size_t t = 0; t < ids.size(); ++t)
    ZF_CHECK(ids[t] >= 0 && ids[t] < config_.vocab_size,
             "[clip text] encode: token {} has id {}, outside the vocabulary [0, {})", t, ids[t],
             config_.vocab_size);
  std::vector<int32_t> positions(static_cast<size_t>(l));
  std::iota(positions.begin(), positions.end(), 0);
  const DType act = placement_.activations;
  Tensor x = ops::add(ops::embedding(token_embedding_, ids, act),
                      ops::embedding(position_embedding_, positions, act));
  const float eps = config_.layer_norm_eps;
  const ClipEncoderLayerOptions options{.heads = config_.num_attention_heads,
                                        .eps = eps,
                                        .causal = true,
                                        .activation = ops::GeluKind::kQuick};
  for (const Layer& layer : layers_) x = clip_encoder_layer(layer, x, options);
  ClipTextOutput out;
  out.last_hidden_state =
      float32_on(ops::layer_norm(x, final_ln_w_, final_ln_b_, eps), Device::CPU).contiguous();
  out.pooled = out.last_hidden_state.select(0, pooled_index(ids)).contiguous();
  return out;
}

io::WeightStore clip_text_weights(const io::WeightStore& weights) {
  return weights.module_weights(kTokenEmbedding, "CLIP text model");
}

ClipTextModel load_clip_text_model(const io::WeightStore& weights,
                                   const std::optional<ClipTextConfig>& config,
                                   const Placement& placement) {
  const io::WeightStore named = clip_text_weights(weights);
  return ClipTextModel(config ? *config : ClipTextConfig::infer_from_weights(named), named,
                       placement);
}

ClipTextModel load_clip_text_model(const std::filesystem::path& path,
                                   const std::optional<ClipTextConfig>& config,
                                   const Placement& placement) {
  const io::WeightStore weights = io::WeightStore::open(path);
  if (config) return load_clip_text_model(weights, config, placement);
  if (const auto json = io::component_config_json(path))
    return load_clip_text_model(weights, ClipTextConfig::from_json_file(*json), placement);
  return load_clip_text_model(weights, std::nullopt, placement);
}

}  // namespace zflow::models
