#include "models/qwen3.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/gguf.h"
#include "io/key_map_qwen3.h"
#include "models/config_json.h"

namespace zflow::models {
namespace {

using Model = Qwen3TextEncoder;

using Binder = ParameterBinder;

constexpr const char* kEmbedTokens = "embed_tokens.weight";

// One decoder layer in transformers' state-dict order (registration order of the modules).
Model::Layer bind_layer(Binder& bind, const Qwen3Config& c, int index) {
  const std::string p = fmt::format("layers.{}.", index);
  const int64_t h = c.hidden_size;
  Model::Layer l;
  l.self_attn.q_proj = bind(p + "self_attn.q_proj.weight", {c.q_features(), h});
  l.self_attn.k_proj = bind(p + "self_attn.k_proj.weight", {c.kv_features(), h});
  l.self_attn.v_proj = bind(p + "self_attn.v_proj.weight", {c.kv_features(), h});
  l.self_attn.o_proj = bind(p + "self_attn.o_proj.weight", {h, c.q_features()});
  if (c.qk_norm) {
    l.self_attn.q_norm = bind(p + "self_attn.q_norm.weight", {c.head_dim});
    l.self_attn.k_norm = bind(p + "self_attn.k_norm.weight", {c.head_dim});
  }
  l.mlp.gate_proj = bind(p + "mlp.gate_proj.weight", {c.intermediate_size, h});
  l.mlp.up_proj = bind(p + "mlp.up_proj.weight", {c.intermediate_size, h});
  l.mlp.down_proj = bind(p + "mlp.down_proj.weight", {h, c.intermediate_size});
  l.input_layernorm = bind(p + "input_layernorm.weight", {h});
  l.post_attention_layernorm = bind(p + "post_attention_layernorm.weight", {h});
  return l;
}

void validate(const Qwen3Config& c, const std::string& source) {
  ZF_CHECK(c.vocab_size >= 1 && c.hidden_size >= 1 && c.intermediate_size >= 1,
           "[qwen3] {}: vocab_size, hidden_size and intermediate_size must be positive", source);
  ZF_CHECK(c.num_hidden_layers >= 2,
           "[qwen3] {}: num_hidden_layers {} < 2: hidden_states[-2] needs a layer before the last",
           source, c.num_hidden_layers);
  ZF_CHECK(c.num_attention_heads >= 1 && c.num_key_value_heads >= 1 &&
               c.num_attention_heads % c.num_key_value_heads == 0,
           "[qwen3] {}: num_key_value_heads {} does not divide num_attention_heads {}", source,
           c.num_key_value_heads, c.num_attention_heads);
  ZF_CHECK(c.head_dim >= 2 && c.head_dim % 2 == 0, "[qwen3] {}: head_dim {} is not even", source,
           c.head_dim);
  ZF_CHECK(c.rope_theta > 0.0, "[qwen3] {}: rope_theta {} is not positive", source, c.rope_theta);
  ZF_CHECK(c.rms_norm_eps > 0.0f, "[qwen3] {}: rms_norm_eps {} is not positive", source,
           c.rms_norm_eps);
}

}  // namespace

Qwen3Config Qwen3Config::mistral_small() {
  Qwen3Config c;
  c.vocab_size = 131072;
  c.hidden_size = 5120;
  c.intermediate_size = 32768;
  c.num_hidden_layers = 40;
  c.num_attention_heads = 32;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.rope_theta = 1e9;
  c.rms_norm_eps = 1e-5f;
  c.tie_word_embeddings = false;
  c.qk_norm = false;
  return c;
}

std::string Qwen3Config::summary() const {
  return fmt::format(
      "vocab {} hidden {} intermediate {} layers {} heads {} kv heads {} head_dim {} rope_theta "
      "{} eps {}{}{}",
      vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
      num_key_value_heads, head_dim, rope_theta, rms_norm_eps, qk_norm ? "" : " (no q/k norm)",
      rope_interleaved ? " (q/k rows permuted for interleaved RoPE)" : "");
}

Qwen3Config Qwen3Config::from_json(const std::string& json_text, const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "qwen3", source);
  auto read_from = [&](const nlohmann::json& obj, const char* key, auto& field) {
    if (!obj.contains(key) || obj[key].is_null()) return false;
    try {
      obj[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[qwen3] {}: field '{}' has the wrong type: {}", source, key, obj[key].dump());
    }
    return true;
  };
  auto read = [&](const char* key, auto& field) { return read_from(j, key, field); };

  std::string text;
  Qwen3Config c;
  if (read("model_type", text)) {
    if (text == "mistral3") {
      // Mistral3ForConditionalGeneration: the language model's config is its text_config.
      ZF_CHECK(j.contains("text_config") && j["text_config"].is_object(),
               "[qwen3] {}: a mistral3 config without a text_config object", source);
      return from_json(j["text_config"].dump(), source + " (text_config)");
    }
    if (text == "mistral") {
      c = mistral_small();
    } else if (text != "qwen3") {
      fail("[qwen3] {}: model_type is \"{}\", expected \"qwen3\", \"mistral\" or \"mistral3\"",
           source, text);
    }
  }
  read("vocab_size", c.vocab_size);
  read("hidden_size", c.hidden_size);
  read("intermediate_size", c.intermediate_size);
  read("num_hidden_layers", c.num_hidden_layers);
  read("num_attention_heads", c.num_attention_heads);
  // transformers: an absent or null kv head count means one kv head per query head.
  if (!read("num_key_value_heads", c.num_key_value_heads))
    c.num_key_value_heads = c.num_attention_heads;
  read("head_dim", c.head_dim);
  read("rms_norm_eps", c.rms_norm_eps);
  read("tie_word_embeddings", c.tie_word_embeddings);
  read("rope_theta", c.rope_theta);

  // transformers 5 keeps theta and the rope type in rope_parameters; 4 had rope_scaling.
  for (const char* key : {"rope_parameters", "rope_scaling"}) {
    if (!j.contains(key) || j[key].is_null()) continue;
    const nlohmann::json& rope = j[key];
    ZF_CHECK(rope.is_object(), "[qwen3] {}: field '{}' is not an object: {}", source, key,
             rope.dump());
    read_from(rope, "rope_theta", c.rope_theta);
    std::string type = "default";
    if (!read_from(rope, "rope_type", type)) read_from(rope, "type", type);
    if (type != "default")
      fail("[qwen3] {}: {}.rope_type is \"{}\"; only \"default\" RoPE is implemented", source, key,
           type);
    double partial = 1.0;
    if (read_from(rope, "partial_rotary_factor", partial) && partial != 1.0)
      fail("[qwen3] {}: {}.partial_rotary_factor is {}; only full rotary is implemented", source,
           key, partial);
  }
  if (read("hidden_act", text) && text != "silu")
    fail("[qwen3] {}: hidden_act is \"{}\", expected \"silu\"", source, text);
  bool flag = false;
  if (read("attention_bias", flag) && flag)
    fail("[qwen3] {}: attention_bias is true; Qwen3 attention without biases is implemented",
         source);
  if (read("use_sliding_window", flag) && flag)
    fail("[qwen3] {}: use_sliding_window is true; only full attention is implemented", source);
  int64_t window = 0;
  if (!c.qk_norm && read("sliding_window", window))
    fail("[qwen3] {}: sliding_window is {}; only full attention is implemented", source, window);
  std::vector<std::string> layer_types;
  read("layer_types", layer_types);
  for (const std::string& t : layer_types)
    if (t != "full_attention")
      fail("[qwen3] {}: layer_types holds \"{}\"; only full_attention is implemented", source, t);
  validate(c, source);
  return c;
}

Qwen3Config Qwen3Config::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "qwen3"), path.string());
}

Qwen3Config Qwen3Config::infer_from_weights(const io::WeightStore& w) {
  const std::string source = w.description();
  auto dims = [&](const std::string& name, size_t rank) {
    const Tensor t = w.get(name);
    ZF_CHECK(t.ndim() == static_cast<int>(rank), "[qwen3] {}: '{}' has shape {}, expected rank {}",
             w.source_of(name), name, shape_str(t.shape()), rank);
    return t.shape();
  };
  // Without q/k norms the model is Mistral's, whose head width the weights do not show: the
  // Mistral-Small-3 values (FLUX.2-dev's encoder) stand in for what is not there.
  const bool qk_norm = w.contains("layers.0.self_attn.q_norm.weight");
  Qwen3Config c = qk_norm ? Qwen3Config{} : mistral_small();
  const Shape embed = dims("embed_tokens.weight", 2);
  c.vocab_size = embed[0];
  c.hidden_size = embed[1];
  if (qk_norm) c.head_dim = dims("layers.0.self_attn.q_norm.weight", 1)[0];
  ZF_CHECK(c.head_dim > 0, "[qwen3] {}: q_norm is empty", source);
  const int64_t q_rows = dims("layers.0.self_attn.q_proj.weight", 2)[0];
  const int64_t k_rows = dims("layers.0.self_attn.k_proj.weight", 2)[0];
  ZF_CHECK(q_rows % c.head_dim == 0 && k_rows % c.head_dim == 0,
           "[qwen3] {}: q_proj rows {} and k_proj rows {} are not multiples of head_dim {}{}",
           source, q_rows, k_rows, c.head_dim,
           qk_norm ? ""
                   : " (Mistral-Small's; a Mistral file without q/k norms does not show its head "
                     "width: give the model's config.json)");
  c.num_attention_heads = q_rows / c.head_dim;
  c.num_key_value_heads = k_rows / c.head_dim;
  c.intermediate_size = dims("layers.0.mlp.gate_proj.weight", 2)[0];
  int present = 0;
  while (w.contains(fmt::format("layers.{}.input_layernorm.weight", present))) ++present;
  const bool complete = w.contains("norm.weight");
  c.num_hidden_layers = complete ? present : present + 1;
  validate(c, source);
  log::info("[qwen3] {}: no config.json, inferred from weight shapes ({} layers stored{}): {}",
            source, present, complete ? "" : ", no final norm: the last layer counted as cut",
            c.summary());
  return c;
}

std::vector<ParameterSpec> qwen3_parameters(const Qwen3Config& config, int layers_needed) {
  validate(config, "config");
  ZF_CHECK(layers_needed >= 0 && layers_needed <= config.num_hidden_layers,
           "[qwen3] layers_needed {} outside [0, {}]", layers_needed, config.num_hidden_layers);
  Binder bind(nullptr);
  bind("embed_tokens.weight", {config.vocab_size, config.hidden_size});
  for (int i = 0; i < layers_needed; ++i) bind_layer(bind, config, i);
  if (layers_needed == config.num_hidden_layers) bind("norm.weight", {config.hidden_size});
  return bind.take_specs();
}

io::WeightStore qwen3_random_weights(const Qwen3Config& config, DType dtype, uint64_t seed,
                                     Device device) {
  return random_weights(qwen3_parameters(config, config.encoder_layers()), dtype, seed, device);
}

RopeTables qwen3_rope_tables(const Qwen3Config& config, int64_t length) {
  const int64_t half = config.head_dim / 2;
  // transformers: inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=float) / dim)),
  // each step rounded to float32; pow and sin/cos here are rounded once from double.
  std::vector<float> inv_freq(static_cast<size_t>(half));
  const float dim = static_cast<float>(config.head_dim);
  const float theta = static_cast<float>(config.rope_theta);
  for (int64_t j = 0; j < half; ++j) {
    const float exponent = static_cast<float>(2 * j) / dim;
    const float power = static_cast<float>(std::pow(static_cast<double>(theta), exponent));
    inv_freq[static_cast<size_t>(j)] = 1.0f / power;
  }
  std::vector<float> cos(static_cast<size_t>(length * half)), sin(cos.size());
  for (int64_t pos = 0; pos < length; ++pos) {
    for (int64_t j = 0; j < half; ++j) {
      const float angle = static_cast<float>(pos) * inv_freq[static_cast<size_t>(j)];
      const size_t at = static_cast<size_t>(pos * half + j);
      cos[at] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[at] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return {Tensor::from_f32({1, length, half}, cos), Tensor::from_f32({1, length, half}, sin)};
}

double qwen3_encode_flops(const Qwen3Config& c, int64_t tokens) {
  const double n = static_cast<double>(tokens), hidden = static_cast<double>(c.hidden_size);
  const double q = static_cast<double>(c.q_features()), kv = static_cast<double>(c.kv_features());
  const double mlp = static_cast<double>(c.intermediate_size);
  const double linears = 2 * n * (hidden * q + 2 * hidden * kv + q * hidden + 3 * hidden * mlp);
  const double attention = 2 * n * n * q;  // q k^T and p v over the causal half
  return c.encoder_layers() * (linears + attention);
}

namespace {

std::vector<int> checked_taps(std::vector<int> taps, const Qwen3Config& c,
                              const std::string& source) {
  if (taps.empty()) return {c.encoder_layers()};
  for (int k : taps)
    ZF_CHECK(k >= 1 && k < c.num_hidden_layers,
             "[qwen3] {}: hidden state {} is not one of the layer outputs 1..{} this encoder gives",
             source, k, c.num_hidden_layers - 1);
  return taps;
}

}  // namespace

Qwen3TextEncoder::Qwen3TextEncoder(const Qwen3Config& config, const io::WeightStore& weights,
                                   const Placement& placement, std::vector<int> taps)
    : config_(config), placement_(placement) {
  validate(config_, weights.description());
  taps_ = checked_taps(std::move(taps), config_, weights.description());
  const int needed = *std::max_element(taps_.begin(), taps_.end());
  // More layers than the config says means the config is not this checkpoint's, and the taps
  // would be taken from the wrong layers.
  const std::string extra =
      fmt::format("layers.{}.input_layernorm.weight", config_.num_hidden_layers);
  ZF_CHECK(!weights.contains(extra),
           "[qwen3] {}: holds '{}', past num_hidden_layers {}: the config is not this model's",
           weights.description(), extra, config_.num_hidden_layers);
  auto bind_all = [&](const io::WeightStore& store) {
    Binder bind(&store, "config: " + config_.summary());
    embed_tokens_ = bind(kEmbedTokens, {config_.vocab_size, config_.hidden_size});
    layers_.clear();
    for (int i = 0; i < needed; ++i) layers_.push_back(bind_layer(bind, config_, i));
    return bind.take_specs();
  };
  const std::vector<ParameterSpec> bound = bind_all(weights);
  // The token embedding stays in host memory wherever the layers run: a prompt reads a few
  // hundred of its 152k rows, and on the GPU it would hold 0.8 GB (bf16) of memory for that.
  const std::string on_host[] = {kEmbedTokens};
  if (placement_.offload) {
    std::vector<std::string> prefixes;
    for (int i = 0; i < needed; ++i) prefixes.push_back(fmt::format("layers.{}.", i));
    offload_ = std::make_shared<OffloadedBlocks>(weights, bound, prefixes, placement_, "qwen3");
    bind_all(offload_->place_resident(weights, placement_, "qwen3", on_host));
  } else if (placement_.device != Device::CPU) {
    bind_all(place_weights(weights, bound, placement_, "qwen3", on_host));
  }
  log::debug("[qwen3] {}: bound {} of its {} tensors ({} of {} layers: hidden states {})",
             weights.description(), bound.size(), weights.size(), needed, config_.num_hidden_layers,
             taps_);
}

int64_t Qwen3TextEncoder::output_features() const {
  return static_cast<int64_t>(taps_.size()) * config_.hidden_size;
}

// Qwen3Attention: q and k get RMSNorm over each head's features, then RoPE (Mistral's: RoPE
// alone); grouped kv heads are read by ops::attention directly (no repeat_kv copy).
Tensor Qwen3TextEncoder::attention(const Layer& layer, const Tensor& x, const RopeTables& rope,
                                   const std::vector<int64_t>& key_lengths) const {
  const Attention& a = layer.self_attn;
  const int64_t b = x.size(0), l = x.size(1), d = config_.head_dim;
  const int64_t heads = config_.num_attention_heads, kv_heads = config_.num_key_value_heads;
  // One call for the three projections of x: int8 weights quantise x once for all of them.
  const std::vector<Tensor> qkv = ops::linears(x, {a.q_proj, a.k_proj, a.v_proj});
  auto heads_of = [&](const Tensor& y, int64_t n) {
    return y.view({b, l, n, d});  // [B, L, n, D]
  };
  auto rotated = [&](const Tensor& h, const Tensor& norm) {
    const Tensor out = config_.qk_norm
                           ? ops::rms_norm_rope(h, norm, config_.rms_norm_eps, rope.cos, rope.sin,
                                                ops::RopeLayout::kHalfSplit)
                           : ops::rope(h, rope.cos, rope.sin,
                                       config_.rope_interleaved ? ops::RopeLayout::kInterleaved
                                                                : ops::RopeLayout::kHalfSplit);
    return out.permute({0, 2, 1, 3});  // [B, n, L, D]
  };
  ops::AttentionMask mask;
  mask.causal = true;
  mask.key_lengths = key_lengths;
  const Tensor out = ops::attention(rotated(heads_of(qkv[0], heads), a.q_norm),
                                    rotated(heads_of(qkv[1], kv_heads), a.k_norm),
                                    heads_of(qkv[2], kv_heads).permute({0, 2, 1, 3}),
                                    1.0f / std::sqrt(static_cast<float>(d)), mask);
  return ops::linear(out.permute({0, 2, 1, 3}).contiguous().view({b, l, heads * d}), a.o_proj);
}

Tensor Qwen3TextEncoder::forward(Tensor x, const std::vector<int64_t>& key_lengths,
                                 bool attend) const {
  const RopeTables host = qwen3_rope_tables(config_, x.size(1));
  const RopeTables rope{host.cos.to(placement_.device), host.sin.to(placement_.device)};
  const float eps = config_.rms_norm_eps;
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  std::vector<Tensor> tapped(taps_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    std::optional<BlockLease> lease;
    const Layer layer = block_to_run(offload_.get(), lease, i, layers_[i], [&](Binder& bind) {
      return bind_layer(bind, config_, static_cast<int>(i));
    });
    if (attend)
      x = ops::add(
          x, attention(layer, ops::rms_norm(x, layer.input_layernorm, eps), rope, key_lengths));
    const Tensor h = ops::rms_norm(x, layer.post_attention_layernorm, eps);
    const Mlp& m = layer.mlp;
    const std::vector<Tensor> up = ops::linears(h, {m.gate_proj, m.up_proj});
    x = ops::add(x, ops::linear(ops::silu_mul(up[0], up[1]), m.down_proj));
    // x is now hidden_states[i + 1].
    for (size_t t = 0; t < taps_.size(); ++t)
      if (taps_[t] == static_cast<int>(i) + 1) tapped[t] = x;
  }
  return tapped.size() == 1 ? tapped[0] : ops::concat(tapped, 2);
}

Tensor Qwen3TextEncoder::embed(const std::vector<std::vector<int32_t>>& ids, int64_t length,
                               int32_t pad) const {
  const int64_t batch = static_cast<int64_t>(ids.size());
  std::vector<int32_t> padded(static_cast<size_t>(batch * length), pad);
  for (size_t i = 0; i < ids.size(); ++i) {
    ZF_CHECK(!ids[i].empty(), "[qwen3] encode: sequence {} has no tokens", i);
    ZF_CHECK(static_cast<int64_t>(ids[i].size()) <= length,
             "[qwen3] encode: sequence {} has {} tokens, more than {}", i, ids[i].size(), length);
    for (size_t t = 0; t < ids[i].size(); ++t)
      ZF_CHECK(ids[i][t] >= 0 && ids[i][t] < config_.vocab_size,
               "[qwen3] encode: sequence {} token {} has id {}, outside the vocabulary [0, {})", i,
               t, ids[i][t], config_.vocab_size);
    std::copy(ids[i].begin(), ids[i].end(), padded.begin() + static_cast<int64_t>(i) * length);
  }
  return placement_.activation(
      ops::embedding(embed_tokens_, padded).view({batch, length, config_.hidden_size}));
}

Tensor Qwen3TextEncoder::encode(std::span<const int32_t> ids) const {
  std::vector<Tensor> out = encode_batch({std::vector<int32_t>(ids.begin(), ids.end())});
  return std::move(out[0]);
}

std::vector<Tensor> Qwen3TextEncoder::encode_batch(
    const std::vector<std::vector<int32_t>>& ids) const {
  if (ids.empty()) return {};
  std::vector<int64_t> lengths;
  for (const auto& row : ids) lengths.push_back(static_cast<int64_t>(row.size()));
  const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
  // Right padding with id 0: the causal mask and the key lengths keep the padding out of
  // every real token's attention, so its rows are computed and dropped.
  const bool ragged =
      std::any_of(lengths.begin(), lengths.end(), [&](int64_t n) { return n != longest; });
  const Tensor h = forward(embed(ids, longest, 0), ragged ? lengths : std::vector<int64_t>{});
  std::vector<Tensor> out;
  for (size_t i = 0; i < ids.size(); ++i)
    out.push_back(
        float32_on(h.select(0, static_cast<int64_t>(i)).slice(0, 0, lengths[i]), Device::CPU)
            .contiguous());
  return out;
}

Tensor Qwen3TextEncoder::encode_padded(const std::vector<std::vector<int32_t>>& ids,
                                       std::span<const int64_t> real_lengths) const {
  ZF_CHECK(!ids.empty() && real_lengths.size() == ids.size(),
           "[qwen3] encode: {} padded sequences with {} real lengths", ids.size(),
           real_lengths.size());
  const int64_t length = static_cast<int64_t>(ids[0].size());
  for (size_t i = 0; i < ids.size(); ++i)
    ZF_CHECK(static_cast<int64_t>(ids[i].size()) == length && real_lengths[i] >= 1 &&
                 real_lengths[i] <= length,
             "[qwen3] encode: padded sequence {} has {} ids and {} real ones, expected {} ids and "
             "1..{} real",
             i, ids[i].size(), real_lengths[i], length, length);
  // The pad ids are in `ids`; the keys past each real length are masked as transformers masks
  // them, while every row (padding included) is computed and kept.
  const std::vector<int64_t> key_lengths(real_lengths.begin(), real_lengths.end());
  return float32_on(forward(embed(ids, length, 0), key_lengths), Device::CPU);
}

// A padding query sees only padding keys (causal), all masked: SDPA gives such a row zero
// attention output, so each padding row is the pad embedding through the MLPs alone.
Tensor Qwen3TextEncoder::pad_row(int32_t pad_id) const {
  const std::lock_guard<std::mutex> lock(pad_rows_->mutex);
  Tensor& row = pad_rows_->rows[pad_id];
  if (!row.defined())
    row = float32_on(forward(embed({{pad_id}}, 1, 0), {}, false), Device::CPU)
              .contiguous()
              .view({output_features()});
  return row;
}

Tensor Qwen3TextEncoder::encode_left_padded(std::span<const int32_t> ids, int64_t length,
                                            int32_t pad_id) const {
  const int64_t real = static_cast<int64_t>(ids.size());
  ZF_CHECK(real >= 1 && real <= length,
           "[qwen3] encode: {} ids to pad on the left to {}, expected 1..{}", real, length, length);
  // The real tokens' positions are shifted by the padding count, which RoPE cannot see (it
  // depends on position differences only), and the padding is masked from their attention:
  // they are the unpadded sequence's states.
  const Tensor states = encode(ids);  // [real, F]
  const int64_t features = output_features();
  Tensor out = Tensor::empty({1, length, features}, DType::F32);
  float* rows = out.data<float>();
  const int64_t padding = length - real;
  if (padding > 0) {
    const Tensor pad = pad_row(pad_id);
    for (int64_t r = 0; r < padding; ++r)
      std::copy_n(pad.data<float>(), features, rows + r * features);
  }
  std::copy_n(states.data<float>(), real * features, rows + padding * features);
  return out;
}

io::WeightStore qwen3_model_weights(const io::WeightStore& weights) {
  if (io::has_llamacpp_qwen3_names(weights)) return io::llamacpp_qwen3_to_transformers(weights);
  return weights.module_weights("embed_tokens.weight", "Qwen3 checkpoint");
}

Qwen3Config Qwen3Config::from_gguf(const io::GgufHeader& header, int64_t vocab_size,
                                   const std::string& source) {
  auto value = [&](const std::string& key) -> const io::GgufValue& {
    const io::GgufValue* v = header.find(key);
    ZF_CHECK(v != nullptr, "[qwen3] {}: GGUF key '{}' is missing", source, key);
    return *v;
  };
  const std::string& arch = value("general.architecture").as_string("general.architecture");
  ZF_CHECK(arch == "qwen3" || arch == "llama",
           "[qwen3] {}: general.architecture is \"{}\", expected \"qwen3\" or \"llama\" (Mistral)",
           source, arch);
  const auto key = [&](const char* name) { return arch + "." + name; };
  const auto count = [&](const char* name) { return value(key(name)).as_int(key(name)); };
  Qwen3Config c = arch == "qwen3" ? Qwen3Config{} : mistral_small();
  c.rope_interleaved = arch == "llama";
  c.vocab_size = vocab_size;
  c.hidden_size = count("embedding_length");
  c.num_hidden_layers = static_cast<int>(count("block_count"));
  c.intermediate_size = count("feed_forward_length");
  c.num_attention_heads = count("attention.head_count");
  c.num_key_value_heads = header.find(key("attention.head_count_kv"))
                              ? count("attention.head_count_kv")
                              : c.num_attention_heads;
  // llama.cpp writes key_length only where the head width is not hidden / heads.
  c.head_dim = header.find(key("attention.key_length")) || arch == "qwen3"
                   ? count("attention.key_length")
                   : c.hidden_size / c.num_attention_heads;
  if (header.find(key("rope.freq_base")))
    c.rope_theta = value(key("rope.freq_base")).as_double(key("rope.freq_base"));
  const std::string eps = key("attention.layer_norm_rms_epsilon");
  if (header.find(eps)) c.rms_norm_eps = static_cast<float>(value(eps).as_double(eps));
  validate(c, source);
  return c;
}

Qwen3TextEncoder load_qwen3_text_encoder(const io::WeightStore& weights,
                                         const std::optional<Qwen3Config>& config,
                                         const Placement& placement, const std::vector<int>& taps) {
  const io::WeightStore named = qwen3_model_weights(weights);
  if (config) return Qwen3TextEncoder(*config, named, placement, taps);
  if (const io::GgufHeader* gguf = weights.gguf_header())
    return Qwen3TextEncoder(Qwen3Config::from_gguf(*gguf, named.get("embed_tokens.weight").size(0),
                                                   weights.description()),
                            named, placement, taps);
  return Qwen3TextEncoder(Qwen3Config::infer_from_weights(named), named, placement, taps);
}

Qwen3TextEncoder load_qwen3_text_encoder(const std::filesystem::path& path,
                                         const std::optional<Qwen3Config>& config,
                                         const Placement& placement, const std::vector<int>& taps) {
  const io::WeightStore weights = io::WeightStore::open(path);
  if (config) return load_qwen3_text_encoder(weights, config, placement, taps);
  if (const auto json = io::component_config_json(path))
    return load_qwen3_text_encoder(weights, Qwen3Config::from_json_file(*json), placement, taps);
  return load_qwen3_text_encoder(weights, std::nullopt, placement, taps);
}

}  // namespace zflow::models
