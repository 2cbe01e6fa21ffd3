// Qwen3TextEncoder: the Qwen3 decoder-only transformer as Z-Image uses it, a prompt
// encoder that returns hidden_states[-2] (the raw output of the second-to-last layer), or the
// hidden states a pipeline taps (FLUX.2). It runs Mistral's text model too (FLUX.2-dev's
// Mistral-Small-3.2 language model; transformers models/mistral/modeling_mistral.py), which is
// this decoder without the per-head q/k norms (Qwen3Config::qk_norm false).
// Built to transformers' Qwen3Model module tree, so weights bind by its names:
//   embed_tokens.weight [vocab, hidden]
//   layers.N.input_layernorm.weight, layers.N.post_attention_layernorm.weight [hidden]
//   layers.N.self_attn.{q_proj [H*D, hidden], k_proj, v_proj [Hkv*D, hidden],
//                       o_proj [hidden, H*D]}.weight, self_attn.{q_norm, k_norm}.weight [D]
//   layers.N.mlp.{gate_proj, up_proj [inter, hidden], down_proj [hidden, inter]}.weight
//   norm.weight [hidden]   (after the last layer: not used by the encoder)
// Layer math (transformers 5.23 models/qwen3/modeling_qwen3.py): pre-norm residual
// blocks; attention with per-head RMSNorm on q and k before half-split (rotate_half) RoPE,
// grouped kv heads, causal, scale 1/sqrt(D); SwiGLU MLP down(silu(gate(x)) * up(x)).
// Z-Image: diffusers pipelines/z_image/pipeline_z_image.py `_encode_prompt` runs
// Qwen3Model(output_hidden_states=True).hidden_states[-2] and keeps the attention_mask
// == 1 rows; facts/zimage.md sections 2.5 and 3.
#pragma once

#include <map>
#include <memory>
#include <mutex>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/offload.h"
#include "models/parameters.h"
#include "models/placement.h"
#include "models/rope_tables.h"

namespace zflow::models {

// Defaults are Qwen3-4B as Z-Image ships it (text_encoder/config.json).
struct Qwen3Config {
  int64_t vocab_size = 151936;
  int64_t hidden_size = 2560;
  int64_t intermediate_size = 9728;
  int num_hidden_layers = 36;
  int64_t num_attention_heads = 32;
  int64_t num_key_value_heads = 8;
  int64_t head_dim = 128;  // not hidden_size / heads: q_proj has 4096 rows for hidden 2560
  double rope_theta = 1e6;
  float rms_norm_eps = 1e-6f;
  bool tie_word_embeddings = true;  // lm_head is the embedding; the encoder needs neither
  bool qk_norm = true;              // false: Mistral (no q_norm / k_norm weights)
  // q / k rows permuted so that rotary pairs are adjacent (llama.cpp's "llama" GGUFs): RoPE
  // rotates interleaved pairs, which gives transformers' attention scores on its own rows.
  bool rope_interleaved = false;

  // Mistral-Small-3.1 / 3.2's language model (FLUX.2-dev's text encoder; facts: flux.md 3.3).
  static Qwen3Config mistral_small();

  // From a transformers config.json (Qwen3Config, MistralConfig, or Mistral3Config's
  // text_config; rope_theta at the top level as in transformers 4, or in rope_parameters as in
  // 5). Absent fields keep the defaults above (Mistral's: mistral_small()).
  // Rejects what this encoder does not implement: rope types other than "default",
  // partial rotary, sliding-window layers, attention biases, activations other than silu.
  // Errors name `source` and the field.
  static Qwen3Config from_json(const std::string& json_text, const std::string& source);
  static Qwen3Config from_json_file(const std::filesystem::path& path);

  // From the shapes of Qwen3Model-named weights (no prefix), for files without a config:
  //   vocab_size, hidden_size: embed_tokens.weight [vocab, hidden]
  //   head_dim: layers.0.self_attn.q_norm.weight [D]; without it the model is Mistral's and
  //     the rest of mistral_small() applies (head_dim 128, rope_theta 1e9, eps 1e-5)
  //   num_attention_heads, num_key_value_heads: q_proj rows / D, k_proj rows / D
  //   intermediate_size: layers.0.mlp.gate_proj.weight rows
  //   num_hidden_layers: how many layers.{i} exist, plus one when norm.weight is absent
  //     (a file cut for hidden_states[-2] drops the last layer together with the final
  //     norm, which only follows the last layer; a complete file has both)
  //   rope_theta, rms_norm_eps: not in the weights, the Qwen3-4B (or Mistral-Small) values.
  // Logs one line with what it found.
  static Qwen3Config infer_from_weights(const io::WeightStore& weights);

  // From a llama.cpp GGUF's {arch}.* keys (embedding_length, block_count, feed_forward_length,
  // attention.head_count / head_count_kv / key_length, rope.freq_base,
  // attention.layer_norm_rms_epsilon) and the token_embd rows (the vocab). Errors name
  // `source` and the key; general.architecture must be "qwen3", or "llama" (Mistral: no q/k
  // norm, permuted q / k rows, key_length defaulting to embedding_length / head_count).
  static Qwen3Config from_gguf(const io::GgufHeader& header, int64_t vocab_size,
                               const std::string& source);

  // Layers run to produce hidden_states[-2]: all but the last.
  int encoder_layers() const { return num_hidden_layers - 1; }
  int64_t q_features() const { return num_attention_heads * head_dim; }
  int64_t kv_features() const { return num_key_value_heads * head_dim; }
  std::string summary() const;  // one line for logs
};

// The parameters of embed_tokens and layers 0..layers_needed-1, plus the final norm when
// layers_needed is the whole model, in transformers' state-dict order: names and shapes.
std::vector<ParameterSpec> qwen3_parameters(const Qwen3Config& config, int layers_needed);

// Random weights for the encoder's parameters (encoder_layers()), for speed measurements, made
// on `device` (models/parameters.h: one tensor at a time).
io::WeightStore qwen3_random_weights(const Qwen3Config& config, DType dtype, uint64_t seed,
                                     Device device = Device::CPU);

// The RoPE tables for positions 0..length-1: cos and sin [1, length, head_dim / 2], float32,
// computed as transformers does (inv_freq = 1 / theta ** (float32 arange(0, D, 2) / D),
// angle = float32(position * inv_freq)) so they equal its tables to float32 rounding.
RopeTables qwen3_rope_tables(const Qwen3Config& config, int64_t length);

// Floating-point operations (2 x multiply-adds) of encode() for `tokens` tokens: the
// projections and MLP of the encoder layers and the causal attention matmuls.
double qwen3_encode_flops(const Qwen3Config& config, int64_t tokens);

class Qwen3TextEncoder {
 public:
  // What the encoder returns: the hidden states `taps` names, by their index in transformers'
  // output_hidden_states (k: the output of the first k layers, 1 <= k < num_hidden_layers; the
  // last entry, after the final norm, is not offered), concatenated along the features in the
  // order given. Empty: {num_hidden_layers - 1}, hidden_states[-2], what Z-Image reads; FLUX.2
  // klein reads {9, 18, 27}.
  // Binds the embedding and the layers the taps need by their Qwen3Model names; later layers,
  // the final norm and lm_head are neither needed nor read, present or not. A missing or
  // wrong-shaped tensor gives an error naming it and its file (and the config, for a wrong
  // shape); a layer past num_hidden_layers in `weights` is an error too, as the taps would come
  // from the wrong layers. The bound weights are then put where `placement` says
  // (models/placement.h).
  Qwen3TextEncoder(const Qwen3Config& config, const io::WeightStore& weights,
                   const Placement& placement = {}, std::vector<int> taps = {});

  const Qwen3Config& config() const { return config_; }
  const Placement& placement() const { return placement_; }
  const std::vector<int>& taps() const { return taps_; }
  int64_t output_features() const;  // taps x hidden_size

  // The taps of one sequence: [ids.size(), output_features()] float32 on the CPU, wherever the
  // encoder runs. ids must be below vocab_size; at least one id.
  Tensor encode(std::span<const int32_t> ids) const;

  // The same for several sequences in one padded forward (right padding, causal plus
  // key-length mask, positions from 0 in every row): one [len_i, features] per sequence,
  // the rows of its real tokens, equal to encode(ids[i]) up to float rounding.
  std::vector<Tensor> encode_batch(const std::vector<std::vector<int32_t>>& ids) const;

  // Sequences already padded to one length L, with real_lengths[b] real tokens each: every row,
  // padding included, as a pipeline that feeds the padded states on computes them (causal mask
  // plus attention mask 0 on the padding keys, positions 0..L-1). [B, L, features] float32 on
  // the CPU.
  Tensor encode_padded(const std::vector<std::vector<int32_t>>& ids,
                       std::span<const int64_t> real_lengths) const;

  // One sequence of real ids padded on the LEFT to `length` with pad_id, as Mistral's processor
  // pads (attention mask 0 on the padding, positions 0..length-1, transformers' SDPA attention):
  // every row, padding first. [1, length, features] float32 on the CPU.
  Tensor encode_left_padded(std::span<const int32_t> ids, int64_t length, int32_t pad_id) const;

  struct Attention {
    Tensor q_proj, k_proj, v_proj, o_proj, q_norm, k_norm;
  };
  struct Mlp {
    Tensor gate_proj, up_proj, down_proj;
  };
  struct Layer {
    Tensor input_layernorm;
    Attention self_attn;
    Tensor post_attention_layernorm;
    Mlp mlp;
  };

 private:
  // Runs the encoder layers on x[B, L, hidden]; key_lengths[b] real tokens per row (empty: all
  // real); attend false skips the attention (each layer adds its MLP only). The taps,
  // concatenated: [B, L, output_features()].
  Tensor forward(Tensor x, const std::vector<int64_t>& key_lengths, bool attend = true) const;
  // Checked ids, embedded and padded with `pad` to the longest: [B, L, hidden].
  Tensor embed(const std::vector<std::vector<int32_t>>& ids, int64_t length, int32_t pad) const;
  Tensor attention(const Layer& layer, const Tensor& x, const RopeTables& rope,
                   const std::vector<int64_t>& key_lengths) const;

  Qwen3Config config_;
  Placement placement_;
  std::vector<int> taps_;
  Tensor embed_tokens_;  // on the host on every placement: a lookup reads a few rows
  std::vector<Layer> layers_;
  std::shared_ptr<OffloadedBlocks> offload_;  // --offload: the layers' weights, streamed

  // encode_left_padded's padding row for a pad id: it depends on the weights alone, and costs a
  // pass over every MLP weight, so it is computed once. Shared, so the encoder stays movable.
  struct PadRows {
    std::mutex mutex;
    std::map<int32_t, Tensor> rows;  // [features] float32 on the CPU
  };
  Tensor pad_row(int32_t pad_id) const;
  std::shared_ptr<PadRows> pad_rows_ = std::make_shared<PadRows>();
};

// The weights of a Qwen3 checkpoint under Qwen3Model names: the layout is found from the
// key that ends in "embed_tokens.weight" and whatever precedes it (none for a Qwen3Model
// save_pretrained, "model." for a Qwen3ForCausalLM save or ComfyUI's qwen_3_4b.safetensors,
// longer prefixes in combined checkpoints) is removed; tensors outside it (lm_head) are
// dropped. An Error names the store when no embedding or more than one is found.
// A llama.cpp GGUF's names (token_embd, blk.N.attn_q, ...) are mapped to these first
// (io/key_map_qwen3.h).
io::WeightStore qwen3_model_weights(const io::WeightStore& weights);

// Opens a text encoder from a diffusers text_encoder/ folder (config.json + sharded
// safetensors), a *.safetensors.index.json, or a single file in either naming. The config
// is `config` when given, else the folder's config.json (folders only), else a GGUF file's
// qwen3.* metadata, else inferred from the weight shapes.
// `taps` as the constructor takes them.
Qwen3TextEncoder load_qwen3_text_encoder(const std::filesystem::path& path,
                                         const std::optional<Qwen3Config>& config = {},
                                         const Placement& placement = {},
                                         const std::vector<int>& taps = {});
// The same from weights already opened.
Qwen3TextEncoder load_qwen3_text_encoder(const io::WeightStore& weights,
                                         const std::optional<Qwen3Config>& config = {},
                                         const Placement& placement = {},
                                         const std::vector<int>& taps = {});

}  // namespace zflow::models
