// The pre-LayerNorm encoder layer CLIP's text model and SigLIP's vision towers share
// (transformers CLIPEncoderLayer, SiglipEncoderLayer), under the same names:
//   <prefix>self_attn.{q,k,v,out}_proj.{weight [D, D], bias [D]}
//   <prefix>layer_norm{1,2}.{weight, bias} [D]
//   <prefix>mlp.fc1.{weight [I, D], bias [I]}, mlp.fc2.{weight [D, I], bias [D]}
// x += out(attention(q, k, v of LN1(x))) with scale 1/sqrt(head_dim) (causal for CLIP's text),
// then x += fc2(act(fc1(LN2(x)))).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>
#include <string_view>

#include "backend/ops.h"
#include "core/tensor.h"
#include "models/config_json.h"
#include "models/parameters.h"

namespace zflow::models {

struct ClipEncoderLayer {
  Tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b;
  Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  Tensor fc1_w, fc1_b, fc2_w, fc2_b;
};

// Binds one layer under `prefix` ("encoder.layers.3."), in transformers' state-dict order.
ClipEncoderLayer bind_clip_encoder_layer(ParameterBinder& bind, const std::string& prefix,
                                         int64_t hidden, int64_t intermediate);

struct ClipEncoderLayerOptions {
  int64_t heads = 1;
  float eps = 1e-5f;
  bool causal = false;
  ops::GeluKind activation = ops::GeluKind::kQuick;
};

// One sequence x [L, D] through the layer.
Tensor clip_encoder_layer(const ClipEncoderLayer& layer, const Tensor& x,
                          const ClipEncoderLayerOptions& options);

// The vision tower's fields of a transformers SigLIP (1 or 2) config.json: the object itself, or
// a full SiglipConfig / Siglip2Config's vision_config.
const nlohmann::json& siglip_vision_fields(const nlohmann::json& config);
// The settings both SigLIP towers are built for: RGB input (num_channels 3) and
// gelu_pytorch_tanh; anything else is an error naming the field, `tag` and `source` (`model`
// names the tower in it: "SigLIP", "SigLIP 2").
void check_siglip_tower_fields(const ConfigFields& fields, std::string_view tag,
                               const std::string& source, std::string_view model);

}  // namespace zflow::models
