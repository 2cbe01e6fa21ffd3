#include "io/key_map_qwen3.h"

#include <string_view>

#include "core/error.h"

namespace zflow::io {
namespace {

struct Rule {
  std::string_view llamacpp;      // after "blk.{i}." for per-layer rules
  std::string_view transformers;  // after "layers.{i}."; empty: dropped
};

constexpr Rule kLayerRules[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"attn_q_norm.weight", "self_attn.q_norm.weight"},
    {"attn_k_norm.weight", "self_attn.k_norm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

constexpr Rule kGlobalRules[] = {
    {"token_embd.weight", "embed_tokens.weight"},
    {"output_norm.weight", "norm.weight"},
    {"output.weight", ""},
};

// "blk.{i}.{rest}" -> (i, rest), or nullopt when the name is not a layer tensor.
std::optional<std::pair<int, std::string_view>> split_layer(std::string_view name) {
  constexpr std::string_view kBlk = "blk.";
  if (!name.starts_with(kBlk)) return std::nullopt;
  name.remove_prefix(kBlk.size());
  int index = 0;
  size_t digits = 0;
  while (digits < name.size() && digits < 6 && name[digits] >= '0' && name[digits] <= '9')
    index = index * 10 + (name[digits++] - '0');
  if (digits == 0 || digits >= name.size() || name[digits] != '.') return std::nullopt;
  return std::make_pair(index, name.substr(digits + 1));
}

}  // namespace

bool has_llamacpp_qwen3_names(const WeightStore& store) {
  return store.contains("token_embd.weight") && store.contains("blk.0.attn_q.weight");
}

WeightStore llamacpp_qwen3_to_transformers(const WeightStore& store) {
  return store.renamed([&](const std::string& name) -> std::optional<std::string> {
    for (const Rule& r : kGlobalRules)
      if (name == r.llamacpp)
        return r.transformers.empty() ? std::nullopt : std::optional<std::string>(r.transformers);
    if (const auto layer = split_layer(name))
      for (const Rule& r : kLayerRules)
        if (layer->second == r.llamacpp)
          return fmt::format("layers.{}.{}", layer->first, r.transformers);
    fail("[qwen3] {}: tensor '{}' is not part of a llama.cpp Qwen3 or LLaMA GGUF's text model",
         store.source_of(name), name);
  });
}

}  // namespace zflow::io
