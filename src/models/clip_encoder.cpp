#include "models/clip_encoder.h"

#include <cmath>

namespace zflow::models {

ClipEncoderLayer bind_clip_encoder_layer(ParameterBinder& bind, const std::string& p, int64_t h,
                                         int64_t inter) {
  ClipEncoderLayer l;
  l.k_w = bind(p + "self_attn.k_proj.weight", {h, h});
  l.k_b = bind(p + "self_attn.k_proj.bias", {h});
  l.v_w = bind(p + "self_attn.v_proj.weight", {h, h});
  l.v_b = bind(p + "self_attn.v_proj.bias", {h});
  l.q_w = bind(p + "self_attn.q_proj.weight", {h, h});
  l.q_b = bind(p + "self_attn.q_proj.bias", {h});
  l.out_w = bind(p + "self_attn.out_proj.weight", {h, h});
  l.out_b = bind(p + "self_attn.out_proj.bias", {h});
  l.ln1_w = bind(p + "layer_norm1.weight", {h});
  l.ln1_b = bind(p + "layer_norm1.bias", {h});
  l.fc1_w = bind(p + "mlp.fc1.weight", {inter, h});
  l.fc1_b = bind(p + "mlp.fc1.bias", {inter});
  l.fc2_w = bind(p + "mlp.fc2.weight", {h, inter});
  l.fc2_b = bind(p + "mlp.fc2.bias", {h});
  l.ln2_w = bind(p + "layer_norm2.weight", {h});
  l.ln2_b = bind(p + "layer_norm2.bias", {h});
  return l;
}

namespace {

Tensor self_attention(const ClipEncoderLayer& layer, const Tensor& x,
                      const ClipEncoderLayerOptions& o) {
  const int64_t l = x.size(0), d = x.size(1) / o.heads;
  auto heads_of = [&](const Tensor& w, const Tensor& b) {
    return ops::linear(x, w, b).view({1, l, o.heads, d}).permute({0, 2, 1, 3});  // [1, H, L, D]
  };
  ops::AttentionMask mask;
  mask.causal = o.causal;
  const Tensor out =
      ops::attention(heads_of(layer.q_w, layer.q_b), heads_of(layer.k_w, layer.k_b),
                     heads_of(layer.v_w, layer.v_b), 1.0f / std::sqrt(static_cast<float>(d)), mask);
  return ops::linear(out.permute({0, 2, 1, 3}).contiguous().view({l, o.heads * d}), layer.out_w,
                     layer.out_b);
}

}  // namespace

Tensor clip_encoder_layer(const ClipEncoderLayer& layer, const Tensor& x,
                          const ClipEncoderLayerOptions& o) {
  Tensor y =
      ops::add(x, self_attention(layer, ops::layer_norm(x, layer.ln1_w, layer.ln1_b, o.eps), o));
  const Tensor h = ops::layer_norm(y, layer.ln2_w, layer.ln2_b, o.eps);
  return ops::add(y, ops::linear(ops::gelu(ops::linear(h, layer.fc1_w, layer.fc1_b), o.activation),
                                 layer.fc2_w, layer.fc2_b));
}

const nlohmann::json& siglip_vision_fields(const nlohmann::json& config) {
  const auto it = config.find("vision_config");
  return it != config.end() && it->is_object() ? *it : config;
}

void check_siglip_tower_fields(const ConfigFields& fields, std::string_view tag,
                               const std::string& source, std::string_view model) {
  int64_t channels = 3;
  if (fields.read("num_channels", channels) && channels != 3)
    fail("[{}] {}: num_channels is {}; only RGB (3) is implemented", tag, source, channels);
  std::string act;
  if (fields.read("hidden_act", act) && act != "gelu_pytorch_tanh")
    fail("[{}] {}: hidden_act is \"{}\"; only gelu_pytorch_tanh ({}) is implemented", tag, source,
         act, model);
}

}  // namespace zflow::models
