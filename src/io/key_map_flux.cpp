#include "io/key_map_flux.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <span>
#include <vector>

#include "core/error.h"

namespace zflow::io {
namespace {

constexpr std::string_view kOriginalAnchor = "txt_in.weight";
constexpr std::string_view kDiffusersAnchor = "context_embedder.weight";

// What one original module becomes.
enum class Kind {
  Linear,  // `.weight` and `.bias`, each renamed or split the same way
  Scale,   // a QK-norm `.scale` -> `.weight`
};
enum class Split {
  None,        // one target
  Thirds,      // rows in three equal parts: q, k, v
  QkvMlp,      // rows [D, D, D, rest]: q, k, v, mlp (D = the model width)
  SwapHalves,  // (shift, scale) -> (scale, shift): one target, a copy
};
enum class Scope { Once, DoubleBlock, SingleBlock };  // {i} expands over the blocks of a kind

struct Rule {
  std::string_view original;
  std::array<std::string_view, 4> diffusers;
  Scope scope = Scope::Once;
  Kind kind = Kind::Linear;
  Split split = Split::None;
};

// The modules both generations have under the same names on both sides.
constexpr Rule kSharedRules[] = {
    {"txt_in", {"context_embedder"}},
    {"img_in", {"x_embedder"}},
    {"final_layer.linear", {"proj_out"}},
    {"final_layer.adaLN_modulation.1",
     {"norm_out.linear"},
     Scope::Once,
     Kind::Linear,
     Split::SwapHalves},
    {"double_blocks.{i}.img_attn.qkv",
     {"transformer_blocks.{i}.attn.to_q", "transformer_blocks.{i}.attn.to_k",
      "transformer_blocks.{i}.attn.to_v"},
     Scope::DoubleBlock,
     Kind::Linear,
     Split::Thirds},
    {"double_blocks.{i}.txt_attn.qkv",
     {"transformer_blocks.{i}.attn.add_q_proj", "transformer_blocks.{i}.attn.add_k_proj",
      "transformer_blocks.{i}.attn.add_v_proj"},
     Scope::DoubleBlock,
     Kind::Linear,
     Split::Thirds},
    {"double_blocks.{i}.img_attn.norm.query_norm",
     {"transformer_blocks.{i}.attn.norm_q"},
     Scope::DoubleBlock,
     Kind::Scale},
    {"double_blocks.{i}.img_attn.norm.key_norm",
     {"transformer_blocks.{i}.attn.norm_k"},
     Scope::DoubleBlock,
     Kind::Scale},
    {"double_blocks.{i}.txt_attn.norm.query_norm",
     {"transformer_blocks.{i}.attn.norm_added_q"},
     Scope::DoubleBlock,
     Kind::Scale},
    {"double_blocks.{i}.txt_attn.norm.key_norm",
     {"transformer_blocks.{i}.attn.norm_added_k"},
     Scope::DoubleBlock,
     Kind::Scale},
    {"double_blocks.{i}.img_attn.proj",
     {"transformer_blocks.{i}.attn.to_out.0"},
     Scope::DoubleBlock},
    {"double_blocks.{i}.txt_attn.proj",
     {"transformer_blocks.{i}.attn.to_add_out"},
     Scope::DoubleBlock},
    {"single_blocks.{i}.norm.query_norm",
     {"single_transformer_blocks.{i}.attn.norm_q"},
     Scope::SingleBlock,
     Kind::Scale},
    {"single_blocks.{i}.norm.key_norm",
     {"single_transformer_blocks.{i}.attn.norm_k"},
     Scope::SingleBlock,
     Kind::Scale},
};

// FLUX.1: biases, a pooled-text embedder, per-block modulation, GELU MLPs, and the single
// blocks' fused projection split as diffusers splits it.
constexpr Rule kFlux1Rules[] = {
    {"time_in.in_layer", {"time_text_embed.timestep_embedder.linear_1"}},
    {"time_in.out_layer", {"time_text_embed.timestep_embedder.linear_2"}},
    {"vector_in.in_layer", {"time_text_embed.text_embedder.linear_1"}},
    {"vector_in.out_layer", {"time_text_embed.text_embedder.linear_2"}},
    {"guidance_in.in_layer", {"time_text_embed.guidance_embedder.linear_1"}},
    {"guidance_in.out_layer", {"time_text_embed.guidance_embedder.linear_2"}},
    {"double_blocks.{i}.img_mod.lin", {"transformer_blocks.{i}.norm1.linear"}, Scope::DoubleBlock},
    {"double_blocks.{i}.txt_mod.lin",
     {"transformer_blocks.{i}.norm1_context.linear"},
     Scope::DoubleBlock},
    {"double_blocks.{i}.img_mlp.0", {"transformer_blocks.{i}.ff.net.0.proj"}, Scope::DoubleBlock},
    {"double_blocks.{i}.img_mlp.2", {"transformer_blocks.{i}.ff.net.2"}, Scope::DoubleBlock},
    {"double_blocks.{i}.txt_mlp.0",
     {"transformer_blocks.{i}.ff_context.net.0.proj"},
     Scope::DoubleBlock},
    {"double_blocks.{i}.txt_mlp.2",
     {"transformer_blocks.{i}.ff_context.net.2"},
     Scope::DoubleBlock},
    {"single_blocks.{i}.linear1",
     {"single_transformer_blocks.{i}.attn.to_q", "single_transformer_blocks.{i}.attn.to_k",
      "single_transformer_blocks.{i}.attn.to_v", "single_transformer_blocks.{i}.proj_mlp"},
     Scope::SingleBlock,
     Kind::Linear,
     Split::QkvMlp},
    {"single_blocks.{i}.linear2", {"single_transformer_blocks.{i}.proj_out"}, Scope::SingleBlock},
    {"single_blocks.{i}.modulation.lin",
     {"single_transformer_blocks.{i}.norm.linear"},
     Scope::SingleBlock},
};

// FLUX.2 (facts/flux.md section 2.3; diffusers 0.42.1 convert_flux2_transformer_checkpoint_to_
// diffusers): no biases, three shared modulations instead of per-block ones, SwiGLU MLPs named
// linear_in / linear_out, and the single blocks' fused projections kept fused.
constexpr Rule kFlux2Rules[] = {
    {"time_in.in_layer", {"time_guidance_embed.timestep_embedder.linear_1"}},
    {"time_in.out_layer", {"time_guidance_embed.timestep_embedder.linear_2"}},
    {"guidance_in.in_layer", {"time_guidance_embed.guidance_embedder.linear_1"}},
    {"guidance_in.out_layer", {"time_guidance_embed.guidance_embedder.linear_2"}},
    {"double_stream_modulation_img.lin", {"double_stream_modulation_img.linear"}},
    {"double_stream_modulation_txt.lin", {"double_stream_modulation_txt.linear"}},
    {"single_stream_modulation.lin", {"single_stream_modulation.linear"}},
    {"double_blocks.{i}.img_mlp.0", {"transformer_blocks.{i}.ff.linear_in"}, Scope::DoubleBlock},
    {"double_blocks.{i}.img_mlp.2", {"transformer_blocks.{i}.ff.linear_out"}, Scope::DoubleBlock},
    {"double_blocks.{i}.txt_mlp.0",
     {"transformer_blocks.{i}.ff_context.linear_in"},
     Scope::DoubleBlock},
    {"double_blocks.{i}.txt_mlp.2",
     {"transformer_blocks.{i}.ff_context.linear_out"},
     Scope::DoubleBlock},
    {"single_blocks.{i}.linear1",
     {"single_transformer_blocks.{i}.attn.to_qkv_mlp_proj"},
     Scope::SingleBlock},
    {"single_blocks.{i}.linear2",
     {"single_transformer_blocks.{i}.attn.to_out"},
     Scope::SingleBlock},
};

std::span<const Rule> own_rules(FluxGeneration generation) {
  if (generation == FluxGeneration::Flux2) return kFlux2Rules;
  return kFlux1Rules;
}

std::string with_index(std::string_view pattern, int i) {
  std::string out(pattern);
  const size_t at = out.find("{i}");
  if (at != std::string::npos) out.replace(at, 3, std::to_string(i));
  return out;
}

// One original tensor name and what it becomes.
struct Target {
  std::vector<std::string> names;  // diffusers names, 1 or the split's parts
  Split split;
};

std::map<std::string, Target> expand_rules(FluxGeneration generation, FluxBlockCounts counts) {
  std::map<std::string, Target> table;
  std::vector<Rule> rules(std::begin(kSharedRules), std::end(kSharedRules));
  const std::span<const Rule> own = own_rules(generation);
  rules.insert(rules.end(), own.begin(), own.end());
  for (const Rule& rule : rules) {
    const int n = rule.scope == Scope::DoubleBlock   ? counts.double_blocks
                  : rule.scope == Scope::SingleBlock ? counts.single_blocks
                                                     : 1;
    const std::vector<std::pair<std::string_view, std::string_view>> suffixes =
        rule.kind == Kind::Linear
            ? std::vector<std::pair<std::string_view, std::string_view>>{{".weight", ".weight"},
                                                                         {".bias", ".bias"}}
            : std::vector<std::pair<std::string_view, std::string_view>>{{".scale", ".weight"}};
    for (int i = 0; i < n; ++i)
      for (const auto& [from, to] : suffixes) {
        Target target{{}, rule.split};
        for (std::string_view d : rule.diffusers)
          if (!d.empty()) target.names.push_back(with_index(d, i) + std::string(to));
        table[with_index(rule.original, i) + std::string(from)] = std::move(target);
      }
  }
  return table;
}

int count_indexed(const WeightStore& store, std::string_view pattern) {
  int n = 0;
  while (store.contains(with_index(pattern, n))) ++n;
  return n;
}

}  // namespace

std::string_view flux_layout_name(FluxLayout layout) {
  return layout == FluxLayout::Diffusers ? "diffusers" : "original BFL / ComfyUI";
}

std::string_view flux_generation_name(FluxGeneration generation) {
  return generation == FluxGeneration::Flux2 ? "FLUX.2" : "FLUX.1";
}

FluxGeneration detect_flux_generation(const WeightStore& store) {
  const bool shared_modulation = store.contains("double_stream_modulation_img.lin.weight") ||
                                 store.contains("double_stream_modulation_img.linear.weight");
  return shared_modulation ? FluxGeneration::Flux2 : FluxGeneration::Flux1;
}

WeightStore flux_transformer_weights(const WeightStore& store) {
  for (const std::string& name : store.names())
    if (name.ends_with(kOriginalAnchor))
      return store.module_weights(std::string(kOriginalAnchor), "FLUX transformer");
  return store.module_weights(std::string(kDiffusersAnchor), "FLUX transformer");
}

FluxLayout detect_flux_layout(const WeightStore& store) {
  if (store.contains(std::string(kDiffusersAnchor))) return FluxLayout::Diffusers;
  if (store.contains(std::string(kOriginalAnchor))) return FluxLayout::Original;
  fail(
      "[flux] {}: not a FLUX transformer: neither 'context_embedder.weight' (diffusers) nor "
      "'txt_in.weight' (original BFL / ComfyUI) is present ({} tensors)",
      store.description(), store.size());
}

FluxBlockCounts count_flux_blocks(const WeightStore& store) {
  if (detect_flux_layout(store) == FluxLayout::Diffusers)
    return {count_indexed(store, "transformer_blocks.{i}.attn.to_q.weight"),
            count_indexed(store, "single_transformer_blocks.{i}.attn.norm_q.weight")};
  return {count_indexed(store, "double_blocks.{i}.img_attn.qkv.weight"),
          count_indexed(store, "single_blocks.{i}.linear1.weight")};
}

bool flux_has_guidance(const WeightStore& store) {
  return store.contains("guidance_in.in_layer.weight") ||
         store.contains("time_text_embed.guidance_embedder.linear_1.weight") ||
         store.contains("time_guidance_embed.guidance_embedder.linear_1.weight");
}

std::vector<RowMapping> flux_row_mappings(FluxGeneration generation, FluxBlockCounts counts) {
  std::vector<RowMapping> out;
  for (const auto& [original, target] : expand_rules(generation, counts))
    out.push_back({original, target.names, target.split == Split::SwapHalves});
  return out;
}

WeightStore original_flux_to_diffusers(const WeightStore& store) {
  const FluxGeneration generation = detect_flux_generation(store);
  const FluxBlockCounts counts = count_flux_blocks(store);
  const std::map<std::string, Target> table = expand_rules(generation, counts);
  const int64_t width = store.get("img_in.weight").size(0);
  auto target_of = [&](const std::string& name) -> const Target& {
    const auto it = table.find(name);
    ZF_CHECK(it != table.end(),
             "[flux] {}: tensor '{}' is not part of the {} transformer's original layout (for "
             "{} double and {} single blocks)",
             store.source_of(name), name, flux_generation_name(generation), counts.double_blocks,
             counts.single_blocks);
    return it->second;
  };
  WeightStore out = store.renamed([&](const std::string& name) -> std::optional<std::string> {
    const Target& target = target_of(name);
    if (target.split != Split::None) return std::nullopt;
    return target.names[0];
  });
  for (const std::string& name : store.names()) {
    const Target& target = target_of(name);
    if (target.split == Split::None) continue;
    const Tensor t = store.get(name);
    const int64_t rows = t.ndim() >= 1 ? t.size(0) : 0;
    std::vector<int64_t> sizes;  // row counts of the parts
    if (target.split == Split::Thirds && rows % 3 == 0) sizes.assign(3, rows / 3);
    if (target.split == Split::QkvMlp && rows > 3 * width)
      sizes = {width, width, width, rows - 3 * width};
    if (target.split == Split::SwapHalves && rows % 2 == 0) sizes.assign(2, rows / 2);
    ZF_CHECK(!sizes.empty(),
             "[flux] {}: fused '{}' has shape {}, which does not split for width {}",
             store.source_of(name), name, shape_str(t.shape()), width);
    if (target.split == Split::SwapHalves) {
      const int64_t half = sizes[0];
      // Int8 rows would need their scales swapped too: such a layer (no published file has
      // one; ComfyUI keeps modulation in bf16) is dequantised instead.
      const Tensor src = t.row_scales().empty() ? t : t.to(DType::F32);
      Tensor swapped = Tensor::empty(src.shape(), src.dtype());
      swapped.slice(0, 0, half).copy_from(src.slice(0, half, rows));
      swapped.slice(0, half, rows).copy_from(src.slice(0, 0, half));
      out.add(target.names[0], swapped, store.source_of(name));
      continue;
    }
    int64_t at = 0;
    for (size_t p = 0; p < sizes.size(); ++p) {
      out.add(target.names[p], t.slice(0, at, at + sizes[p]), store.source_of(name));
      at += sizes[p];
    }
  }
  return out;
}

}  // namespace zflow::io
