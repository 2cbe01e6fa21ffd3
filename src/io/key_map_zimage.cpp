#include "io/key_map_zimage.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <vector>

#include "core/error.h"

namespace zflow::io {
namespace {

constexpr std::string_view kComfyPrefix = "model.diffusion_model.";

// How a rule's original tensor becomes diffusers tensors.
enum class Action {
  Rename,    // one tensor, new name
  SplitQkv,  // [3D, D] -> three [D, D] views named by replacing {qkv} with to_q, to_k, to_v
  Drop,      // not part of the model
};

struct Rule {
  std::string_view original;
  std::string_view diffusers;
  bool per_block;  // {block} expands over every block prefix; otherwise once
  Action action = Action::Rename;
};

// Parameter paths. Names without a rule are errors, so the unchanged names are listed too.
constexpr Rule kRules[] = {
    {"x_embedder.weight", "all_x_embedder.2-1.weight", false},
    {"x_embedder.bias", "all_x_embedder.2-1.bias", false},
    {"final_layer.linear.weight", "all_final_layer.2-1.linear.weight", false},
    {"final_layer.linear.bias", "all_final_layer.2-1.linear.bias", false},
    {"final_layer.adaLN_modulation.1.weight", "all_final_layer.2-1.adaLN_modulation.1.weight",
     false},
    {"final_layer.adaLN_modulation.1.bias", "all_final_layer.2-1.adaLN_modulation.1.bias", false},
    {"norm_final.weight", "", false, Action::Drop},
    {"t_embedder.mlp.0.weight", "t_embedder.mlp.0.weight", false},
    {"t_embedder.mlp.0.bias", "t_embedder.mlp.0.bias", false},
    {"t_embedder.mlp.2.weight", "t_embedder.mlp.2.weight", false},
    {"t_embedder.mlp.2.bias", "t_embedder.mlp.2.bias", false},
    {"cap_embedder.0.weight", "cap_embedder.0.weight", false},
    {"cap_embedder.1.weight", "cap_embedder.1.weight", false},
    {"cap_embedder.1.bias", "cap_embedder.1.bias", false},
    {"x_pad_token", "x_pad_token", false},
    {"cap_pad_token", "cap_pad_token", false},
    {"{block}.attention.qkv.weight", "{block}.attention.{qkv}.weight", true, Action::SplitQkv},
    {"{block}.attention.out.weight", "{block}.attention.to_out.0.weight", true},
    {"{block}.attention.q_norm.weight", "{block}.attention.norm_q.weight", true},
    {"{block}.attention.k_norm.weight", "{block}.attention.norm_k.weight", true},
    {"{block}.feed_forward.w1.weight", "{block}.feed_forward.w1.weight", true},
    {"{block}.feed_forward.w2.weight", "{block}.feed_forward.w2.weight", true},
    {"{block}.feed_forward.w3.weight", "{block}.feed_forward.w3.weight", true},
    {"{block}.attention_norm1.weight", "{block}.attention_norm1.weight", true},
    {"{block}.attention_norm2.weight", "{block}.attention_norm2.weight", true},
    {"{block}.ffn_norm1.weight", "{block}.ffn_norm1.weight", true},
    {"{block}.ffn_norm2.weight", "{block}.ffn_norm2.weight", true},
    {"{block}.adaLN_modulation.0.weight", "{block}.adaLN_modulation.0.weight", true},
    {"{block}.adaLN_modulation.0.bias", "{block}.adaLN_modulation.0.bias", true},
};

constexpr std::string_view kBlockKinds[] = {"layers", "noise_refiner", "context_refiner"};

// What {qkv} becomes for each third of a fused qkv, in row order.
constexpr const char* kQkvParts[] = {"to_q", "to_k", "to_v"};

std::string replace_all(std::string_view pattern, std::string_view token, std::string_view value) {
  std::string out(pattern);
  for (size_t at = out.find(token); at != std::string::npos;
       at = out.find(token, at + value.size()))
    out.replace(at, token.size(), value);
  return out;
}

struct Target {
  std::string name;
  Action action;
};

std::map<std::string, Target> expand_rules(ZImageBlockCounts counts) {
  std::vector<std::string> blocks;
  const int per_kind[] = {counts.layers, counts.noise_refiner, counts.context_refiner};
  for (size_t k = 0; k < std::size(kBlockKinds); ++k)
    for (int i = 0; i < per_kind[k]; ++i) blocks.push_back(fmt::format("{}.{}", kBlockKinds[k], i));
  std::map<std::string, Target> names;
  for (const Rule& rule : kRules) {
    if (!rule.per_block) {
      names[std::string(rule.original)] = {std::string(rule.diffusers), rule.action};
      continue;
    }
    for (const std::string& block : blocks)
      names[replace_all(rule.original, "{block}", block)] = {
          replace_all(rule.diffusers, "{block}", block), rule.action};
  }
  return names;
}

}  // namespace

int count_zimage_block_run(const WeightStore& store, std::string_view kind) {
  int n = 0;
  while (store.contains(fmt::format("{}.{}.attention_norm1.weight", kind, n))) ++n;
  return n;
}

std::string_view zimage_layout_name(ZImageLayout layout) {
  return layout == ZImageLayout::Diffusers ? "diffusers" : "original (ComfyUI single file)";
}

WeightStore strip_zimage_prefix(const WeightStore& store) {
  for (const std::string& name : store.names())
    if (name.starts_with(kComfyPrefix)) return store.with_prefix_removed(std::string(kComfyPrefix));
  return store;
}

ZImageLayout detect_zimage_layout(const WeightStore& store) {
  if (store.contains("all_x_embedder.2-1.weight")) return ZImageLayout::Diffusers;
  if (store.contains("x_embedder.weight")) return ZImageLayout::Original;
  fail(
      "[zimage] {}: not a Z-Image transformer: neither 'all_x_embedder.2-1.weight' (diffusers) "
      "nor 'x_embedder.weight' (ComfyUI / original) is present ({} tensors)",
      store.description(), store.size());
}

ZImageBlockCounts count_zimage_blocks(const WeightStore& store) {
  return {count_zimage_block_run(store, "layers"), count_zimage_block_run(store, "noise_refiner"),
          count_zimage_block_run(store, "context_refiner")};
}

std::vector<RowMapping> zimage_weight_row_mappings(ZImageBlockCounts counts) {
  std::vector<RowMapping> out;
  for (const auto& [original, target] : expand_rules(counts)) {
    if (!original.ends_with(".weight") || target.action == Action::Drop) continue;
    if (target.action == Action::Rename) {
      out.push_back({original, {target.name}});
      continue;
    }
    RowMapping split{original, {}};
    for (const char* part : kQkvParts)
      split.parts.push_back(replace_all(target.name, "{qkv}", part));
    out.push_back(std::move(split));
  }
  return out;
}

WeightStore original_zimage_to_diffusers(const WeightStore& store, ZImageBlockCounts counts) {
  const std::map<std::string, Target> table = expand_rules(counts);
  auto target_of = [&](const std::string& name) -> const Target& {
    const auto it = table.find(name);
    ZF_CHECK(it != table.end(),
             "[zimage] {}: tensor '{}' is not part of the Z-Image transformer's original layout "
             "(for {} layers, {} noise-refiner and {} context-refiner blocks)",
             store.source_of(name), name, counts.layers, counts.noise_refiner,
             counts.context_refiner);
    return it->second;
  };
  // renamed() keeps the store's description, so later errors still name the file.
  WeightStore out = store.renamed([&](const std::string& name) -> std::optional<std::string> {
    const Target& target = target_of(name);
    if (target.action != Action::Rename) return std::nullopt;
    return target.name;
  });
  for (const std::string& name : store.names()) {
    const Target& target = target_of(name);
    if (target.action != Action::SplitQkv) continue;
    const Tensor t = store.get(name);
    ZF_CHECK(t.ndim() == 2 && t.size(0) % 3 == 0,
             "[zimage] {}: fused '{}' has shape {}, expected [3 * dim, dim]", store.source_of(name),
             name, shape_str(t.shape()));
    const int64_t rows = t.size(0) / 3;
    for (int p = 0; p < 3; ++p)
      out.add(replace_all(target.name, "{qkv}", kQkvParts[p]), t.slice(0, p * rows, (p + 1) * rows),
              store.source_of(name));
  }
  return out;
}

WeightStore diffusers_zimage_to_original(const WeightStore& store, ZImageBlockCounts counts) {
  WeightStore out;
  size_t used = 0;
  for (const auto& [original, target] : expand_rules(counts)) {
    // Rules cover every block kind's parameters; the context refiner has no modulation.
    const std::string first = replace_all(target.name, "{qkv}", kQkvParts[0]);
    if (target.action == Action::Drop || !store.contains(first)) continue;
    if (target.action == Action::Rename) {
      out.add(original, store.get(target.name), store.source_of(target.name));
      ++used;
      continue;
    }
    // Fuse: the rows of to_q, to_k, to_v one after another.
    std::vector<Tensor> parts;
    for (const char* part : kQkvParts)
      parts.push_back(store.get(replace_all(target.name, "{qkv}", part)).contiguous());
    ZF_CHECK(parts[0].ndim() == 2 && parts[1].shape() == parts[0].shape() &&
                 parts[2].shape() == parts[0].shape() && parts[1].dtype() == parts[0].dtype() &&
                 parts[2].dtype() == parts[0].dtype(),
             "[zimage] {}: the q, k, v projections for '{}' differ in shape or dtype",
             store.description(), original);
    Tensor fused = Tensor::empty({3 * parts[0].size(0), parts[0].size(1)}, parts[0].dtype());
    auto* dst = static_cast<char*>(fused.raw());
    for (const Tensor& p : parts)
      dst = std::copy_n(static_cast<const char*>(p.raw()), p.nbytes(), dst);
    out.add(original, fused, store.description());
    used += 3;
  }
  ZF_CHECK(used == store.size(),
           "[zimage] {}: {} tensors are not part of the Z-Image transformer's diffusers layout "
           "(for {} layers, {} noise-refiner and {} context-refiner blocks)",
           store.description(), store.size() - used, counts.layers, counts.noise_refiner,
           counts.context_refiner);
  return out;
}

}  // namespace zflow::io
