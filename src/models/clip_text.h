// ClipTextModel: the CLIP text transformer (FLUX.1's CLIP-L, SD's text encoder), built to
// transformers' CLIPTextModel module tree so weights bind by its names (prefix removed):
//   embeddings.token_embedding.weight [vocab, hidden]
//   embeddings.position_embedding.weight [max_positions, hidden]
//   encoder.layers.N.self_attn.{q,k,v,out}_proj.{weight [hidden, hidden], bias [hidden]}
//   encoder.layers.N.layer_norm{1,2}.{weight, bias} [hidden]
//   encoder.layers.N.mlp.fc1.{weight [inter, hidden], bias [inter]},
//                        mlp.fc2.{weight [hidden, inter], bias [hidden]}
//   final_layer_norm.{weight, bias} [hidden]
// Layer math (transformers 5.23 models/clip/modeling_clip.py): x = token + position
// embedding; pre-LN blocks x += attn(LN1(x)) (causal, scale 1/sqrt(head_dim), biases on all
// projections), x += fc2(quick_gelu(fc1(LN2(x)))); last_hidden_state = final LN(x); pooled =
// last_hidden_state at the EOS position. FLUX.1 uses the pooled 768-vector (facts/flux.md 3.2).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/clip_encoder.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are CLIP-L (openai/clip-vit-large-patch14 text_config, FLUX.1 text_encoder/).
struct ClipTextConfig {
  int64_t vocab_size = 49408;
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t max_position_embeddings = 77;
  float layer_norm_eps = 1e-5f;
  // transformers pools at argmax(ids) when eos_token_id is 2 (the legacy value CLIP-L's
  // config still has: <|endoftext|> 49407 is the largest id), else at the first eos_token_id.
  int64_t eos_token_id = 2;

  // From a transformers config.json (CLIPTextConfig, or a CLIPConfig's text_config). Absent
  // fields keep the defaults. Rejects hidden_act other than quick_gelu. Errors name source.
  static ClipTextConfig from_json(const std::string& json_text, const std::string& source);
  static ClipTextConfig from_json_file(const std::filesystem::path& path);
  // From the shapes of the weights (no prefix): vocab, hidden, positions, intermediate, layers;
  // heads = hidden / 64 (CLIP's head size); eps, eos_token_id: the CLIP-L values.
  static ClipTextConfig infer_from_weights(const io::WeightStore& weights);

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
  std::string summary() const;
};

std::vector<ParameterSpec> clip_text_parameters(const ClipTextConfig& config);

struct ClipTextOutput {
  Tensor last_hidden_state;  // [L, hidden] float32, after final_layer_norm
  Tensor pooled;             // [hidden]: last_hidden_state at pooled_index(ids)
};

class ClipTextModel {
 public:
  // Missing or wrong-shaped tensors are errors naming the tensor and its file. The bound
  // weights are then put where `placement` says (placement.h); outputs are float32 on the CPU
  // either way.
  ClipTextModel(const ClipTextConfig& config, const io::WeightStore& weights,
                const Placement& placement = {});
  const ClipTextConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // One sequence of 1..max_position_embeddings ids below vocab_size (FLUX: 77, padded).
  ClipTextOutput encode(std::span<const int32_t> ids) const;
  // The row transformers pools: the first largest id when eos_token_id == 2, else the first
  // eos_token_id (0 when there is none, as torch's argmax of all-false gives).
  int64_t pooled_index(std::span<const int32_t> ids) const;

  using Layer = ClipEncoderLayer;

 private:
  ClipTextConfig config_;
  Placement placement_;
  Tensor token_embedding_, position_embedding_;
  std::vector<Layer> layers_;
  Tensor final_ln_w_, final_ln_b_;
};

// The weights under CLIPTextModel-internal names: the prefix before
// "embeddings.token_embedding.weight" ("text_model." in transformers' text_encoder/ and
// ComfyUI's clip_l.safetensors, longer in combined checkpoints) is removed; other tensors
// (text_projection, logit_scale, position_ids) are ignored.
io::WeightStore clip_text_weights(const io::WeightStore& weights);

// From a diffusers text_encoder/ folder (config.json + safetensors) or a single file; config
// from `config`, else the folder's config.json, else the weight shapes.
ClipTextModel load_clip_text_model(const std::filesystem::path& path,
                                   const std::optional<ClipTextConfig>& config = {},
                                   const Placement& placement = {});
ClipTextModel load_clip_text_model(const io::WeightStore& weights,
                                   const std::optional<ClipTextConfig>& config = {},
                                   const Placement& placement = {});

}  // namespace zflow::models
