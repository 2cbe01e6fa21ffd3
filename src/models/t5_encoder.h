// T5Encoder: the encoder stack of T5 v1.1 as FLUX.1 uses it for its T5-XXL text encoder
// (facts/flux.md section 3.1): last_hidden_state of every token, the padding included.
// Built to transformers' T5EncoderModel module tree, so weights bind by its names:
//   shared.weight [vocab, d_model]   (or encoder.embed_tokens.weight, the same tied table)
//   encoder.block.N.layer.0.SelfAttention.{q, k, v [heads*d_kv, d_model], o [d_model,
//   heads*d_kv]}.weight encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight
//   [num_buckets, heads] encoder.block.N.layer.0.layer_norm.weight,
//   encoder.block.N.layer.1.layer_norm.weight [d_model]
//   encoder.block.N.layer.1.DenseReluDense.{wi_0, wi_1 [d_ff, d_model], wo [d_model, d_ff]}.weight
//   encoder.final_layer_norm.weight [d_model]
// Layer math (transformers 5.23 models/t5/modeling_t5.py): pre-norm residual blocks with
// T5LayerNorm (x * rsqrt(mean(x^2) + eps) * w: no mean subtraction, no bias); attention scores
// q k^T are NOT scaled by 1/sqrt(d_kv) and get a learned relative position bias, computed once
// from block 0's table and added in every block; FFN wo(gelu_new(wi_0 x) * wi_1 x).
// FLUX passes no attention mask, so the pad tokens take part in attention like any other.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/offload.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are google/t5-v1_1-xxl as FLUX.1 ships it (text_encoder_2/config.json).
struct T5EncoderConfig {
  int64_t vocab_size = 32128;
  int64_t d_model = 4096;
  int64_t d_kv = 64;
  int64_t d_ff = 10240;
  int num_layers = 24;
  int64_t num_heads = 64;
  int relative_attention_num_buckets = 32;
  int relative_attention_max_distance = 128;
  float layer_norm_epsilon = 1e-6f;

  // From a transformers config.json (T5Config). Absent fields keep the defaults above.
  // Rejects what this encoder does not implement: feed_forward_proj other than "gated-gelu"
  // (T5 v1.0's "relu" FFN has no wi_0 / wi_1) and dense_act_fn other than gelu_new.
  static T5EncoderConfig from_json(const std::string& json_text, const std::string& source);
  static T5EncoderConfig from_json_file(const std::filesystem::path& path);

  // From the shapes of T5EncoderModel-named weights, for files without a config:
  //   vocab_size, d_model: the embedding [vocab, d_model]
  //   num_buckets, num_heads: block 0's relative_attention_bias [buckets, heads]
  //   d_kv: q rows / heads; d_ff: wi_0 rows; num_layers: how many encoder.block.{i} exist
  //   max_distance, eps: not in the weights, the XXL values. Logs what it found.
  static T5EncoderConfig infer_from_weights(const io::WeightStore& weights);

  int64_t inner_dim() const { return num_heads * d_kv; }
  std::string summary() const;  // one line for logs
};

// T5's relative position bucket of key position minus query position, bidirectional (the
// encoder): half the buckets for each sign, exact below max_distance / 4 ... / 2 of a half,
// log-spaced up to max_distance, clamped after. Computed in float32 as transformers does.
int t5_relative_position_bucket(int64_t relative_position, int num_buckets, int max_distance);

class T5Encoder {
 public:
  // Binds every tensor by its T5EncoderModel name (see the file comment). A missing or
  // wrong-shaped tensor gives an error naming it and its file. The bound weights are then put
  // where `placement` says (placement.h).
  T5Encoder(const T5EncoderConfig& config, const io::WeightStore& weights,
            const Placement& placement = {});

  const T5EncoderConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // last_hidden_state of one sequence, no attention mask: [ids.size(), d_model] float32 on the
  // CPU. ids must be below vocab_size; at least one id.
  Tensor encode(std::span<const int32_t> ids) const;

  // The position bias [1, heads, length, length] every block adds to its scores: float32 on the
  // CPU.
  Tensor position_bias(int64_t length) const;

  struct Layer {
    Tensor attn_norm, q, k, v, o;
    Tensor ffn_norm, wi_0, wi_1, wo;
  };

 private:
  // Binds every tensor of `weights` to the members; returns what it bound.
  std::vector<ParameterSpec> bind_weights(const io::WeightStore& weights);
  Tensor attention(const Layer& layer, const Tensor& x, const Tensor& bias) const;

  T5EncoderConfig config_;
  Placement placement_;
  Tensor shared_;  // on the host on every placement: a lookup reads a few rows
  std::vector<float> relative_attention_bias_;  // [buckets, heads], read on the host
  std::vector<Layer> layers_;
  Tensor final_layer_norm_;
  std::shared_ptr<OffloadedBlocks> offload_;  // --offload: the layers' weights, streamed
};

// The weights of a T5 checkpoint under T5EncoderModel names: the prefix is found from the key
// that ends in "encoder.final_layer_norm.weight" (none for transformers' text_encoder_2/ and
// ComfyUI's t5xxl_*.safetensors, longer ones in combined checkpoints) and removed. The encoder
// reads the embedding from shared.weight, or encoder.embed_tokens.weight when that is absent.
io::WeightStore t5_encoder_weights(const io::WeightStore& weights);

// Opens the encoder from a diffusers text_encoder_2/ folder (config.json + sharded
// safetensors), a *.safetensors.index.json, or a single file. The config is `config` when
// given, else the folder's config.json (folders only), else inferred from the weight shapes.
T5Encoder load_t5_encoder(const std::filesystem::path& path,
                          const std::optional<T5EncoderConfig>& config = {},
                          const Placement& placement = {});
T5Encoder load_t5_encoder(const io::WeightStore& weights,
                          const std::optional<T5EncoderConfig>& config = {},
                          const Placement& placement = {});

}  // namespace zflow::models
