#include "io/key_map_autoencoder.h"

#include <fmt/format.h>

#include <map>
#include <regex>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace zflow::io {
namespace {

// Which indices a rule is expanded over. {i} is the diffusers level, {r} = levels-1-i the
// original decoder level (BFL builds `up` in reverse and inserts at the front), {j} a
// resnet within the level, {side} encoder / decoder.
enum class Over {
  Once,             // no placeholder
  Sides,            // {side}
  EncoderResnets,   // {i} < levels, {j} < layers_per_block
  EncoderDownsamp,  // {i} < levels - 1
  DecoderResnets,   // {i} < levels, {j} < layers_per_block + 1
  DecoderUpsamp,    // {i} < levels - 1
};

struct Rule {
  std::string_view original;
  std::string_view diffusers;
  Over over;
  bool resnet = false;   // a ResnetBlock: expanded over kResnetParts
  bool squeeze = false;  // a 1x1 conv weight [C, C, 1, 1] that diffusers keeps as Linear [C, C]
};

// Module paths; every parameter under a module keeps its own name (weight, bias).
constexpr Rule kRules[] = {
    {"{side}.conv_in", "{side}.conv_in", Over::Sides},
    {"encoder.down.{i}.block.{j}", "encoder.down_blocks.{i}.resnets.{j}", Over::EncoderResnets,
     true},
    {"encoder.down.{i}.downsample.conv", "encoder.down_blocks.{i}.downsamplers.0.conv",
     Over::EncoderDownsamp},
    {"{side}.mid.block_1", "{side}.mid_block.resnets.0", Over::Sides, true},
    {"{side}.mid.attn_1.norm", "{side}.mid_block.attentions.0.group_norm", Over::Sides},
    {"{side}.mid.attn_1.q", "{side}.mid_block.attentions.0.to_q", Over::Sides, false, true},
    {"{side}.mid.attn_1.k", "{side}.mid_block.attentions.0.to_k", Over::Sides, false, true},
    {"{side}.mid.attn_1.v", "{side}.mid_block.attentions.0.to_v", Over::Sides, false, true},
    {"{side}.mid.attn_1.proj_out", "{side}.mid_block.attentions.0.to_out.0", Over::Sides, false,
     true},
    {"{side}.mid.block_2", "{side}.mid_block.resnets.1", Over::Sides, true},
    {"decoder.up.{r}.block.{j}", "decoder.up_blocks.{i}.resnets.{j}", Over::DecoderResnets, true},
    {"decoder.up.{r}.upsample.conv", "decoder.up_blocks.{i}.upsamplers.0.conv",
     Over::DecoderUpsamp},
    {"{side}.norm_out", "{side}.conv_norm_out", Over::Sides},
    {"{side}.conv_out", "{side}.conv_out", Over::Sides},
    {"quant_conv", "quant_conv", Over::Once},
    {"post_quant_conv", "post_quant_conv", Over::Once},
    // FLUX.2's AE keeps its quant convs inside the encoder and decoder, and carries the
    // BatchNorm statistics its pipelines normalise latents with.
    {"encoder.quant_conv", "quant_conv", Over::Once},
    {"decoder.post_quant_conv", "post_quant_conv", Over::Once},
    {"bn", "bn", Over::Once},
};

constexpr std::pair<std::string_view, std::string_view> kResnetParts[] = {
    {"norm1", "norm1"},
    {"conv1", "conv1"},
    {"norm2", "norm2"},
    {"conv2", "conv2"},
    {"nin_shortcut", "conv_shortcut"},
};

struct Target {
  std::string name;
  bool squeeze;
};

std::string fill(std::string_view pattern, const std::map<std::string, std::string>& values) {
  std::string out(pattern);
  for (const auto& [key, value] : values) {
    const std::string token = "{" + key + "}";
    for (size_t at = out.find(token); at != std::string::npos; at = out.find(token, at))
      out.replace(at, token.size(), value);
  }
  return out;
}

// original module path -> diffusers module path, for every index the counts allow.
std::map<std::string, Target> expand_rules(AutoencoderCounts counts) {
  std::map<std::string, Target> modules;
  auto add = [&](const Rule& rule, const std::map<std::string, std::string>& values) {
    const std::string from = fill(rule.original, values), to = fill(rule.diffusers, values);
    if (!rule.resnet) {
      modules[from] = {to, rule.squeeze};
      return;
    }
    for (const auto& [orig_part, diff_part] : kResnetParts)
      modules[from + "." + std::string(orig_part)] = {to + "." + std::string(diff_part), false};
  };
  const int levels = counts.levels;
  for (const Rule& rule : kRules) {
    switch (rule.over) {
      case Over::Once:
        add(rule, {});
        break;
      case Over::Sides:
        for (const char* side : {"encoder", "decoder"}) add(rule, {{"side", side}});
        break;
      case Over::EncoderResnets:
      case Over::DecoderResnets: {
        const int per_level = counts.layers_per_block + (rule.over == Over::DecoderResnets ? 1 : 0);
        for (int i = 0; i < levels; ++i)
          for (int j = 0; j < per_level; ++j)
            add(rule, {{"i", std::to_string(i)},
                       {"r", std::to_string(levels - 1 - i)},
                       {"j", std::to_string(j)}});
        break;
      }
      case Over::EncoderDownsamp:
      case Over::DecoderUpsamp:
        for (int i = 0; i + 1 < levels; ++i)
          add(rule, {{"i", std::to_string(i)}, {"r", std::to_string(levels - 1 - i)}});
        break;
    }
  }
  return modules;
}

bool has_prefix(const WeightStore& store, const std::string& prefix) {
  for (const auto& name : store.names())
    if (name.rfind(prefix, 0) == 0) return true;
  return false;
}

// 1 + the largest {n} among names matching `pattern` (a regex with one group), or 0.
int count_indices(const WeightStore& store, const std::regex& pattern) {
  int count = 0;
  std::smatch m;
  for (const auto& name : store.names())
    if (std::regex_search(name, m, pattern)) count = std::max(count, std::stoi(m[1]) + 1);
  return count;
}

}  // namespace

std::string_view autoencoder_layout_name(AutoencoderLayout layout) {
  return layout == AutoencoderLayout::Diffusers ? "diffusers" : "original (BFL/LDM)";
}

WeightStore strip_autoencoder_prefix(const WeightStore& store) {
  for (const char* prefix : {"first_stage_model.", "vae."})
    if (has_prefix(store, std::string(prefix) + "encoder.") ||
        has_prefix(store, std::string(prefix) + "decoder."))
      return store.with_prefix_removed(prefix);
  return store;
}

AutoencoderLayout detect_autoencoder_layout(const WeightStore& store) {
  if (has_prefix(store, "encoder.down_blocks.") || has_prefix(store, "decoder.up_blocks."))
    return AutoencoderLayout::Diffusers;
  if (has_prefix(store, "encoder.down.") || has_prefix(store, "decoder.up."))
    return AutoencoderLayout::Original;
  fail(
      "[load] {}: not a KL autoencoder: no 'encoder.down_blocks.*' (diffusers) or "
      "'encoder.down.*' (BFL/LDM) tensors",
      store.description());
}

AutoencoderCounts count_original_autoencoder_layers(const WeightStore& store) {
  AutoencoderCounts counts;
  counts.levels = count_indices(store, std::regex(R"(^encoder\.down\.(\d+)\.)"));
  counts.layers_per_block =
      count_indices(store, std::regex(R"(^encoder\.down\.0\.block\.(\d+)\.)"));
  return counts;
}

WeightStore original_autoencoder_to_diffusers(const WeightStore& store, AutoencoderCounts counts) {
  const auto modules = expand_rules(counts);
  // renamed() keeps the store's description for later errors; the squeezed attention
  // weights need a new view, so they are dropped there and added back reshaped.
  std::vector<std::pair<std::string, std::string>> squeezed;  // original -> diffusers name
  WeightStore out = store.renamed([&](const std::string& name) -> std::optional<std::string> {
    const size_t dot = name.rfind('.');
    const auto it = dot == std::string::npos ? modules.end() : modules.find(name.substr(0, dot));
    if (it == modules.end())
      fail(
          "[load] {}: tensor '{}' is not part of an original-layout autoencoder with {} levels "
          "and {} resnets per level",
          store.source_of(name), name, counts.levels, counts.layers_per_block);
    const std::string target = it->second.name + name.substr(dot);
    if (!it->second.squeeze) return target;
    squeezed.emplace_back(name, target);
    return std::nullopt;
  });
  for (const auto& [name, target] : squeezed) {
    Tensor t = store.get(name);
    if (t.ndim() == 4 && t.size(2) == 1 && t.size(3) == 1) t = t.view({t.size(0), t.size(1)});
    out.add(target, t, store.source_of(name));
  }
  return out;
}

WeightStore diffusers_autoencoder_to_original(const WeightStore& store, AutoencoderCounts counts) {
  std::map<std::string, std::pair<std::string, bool>> inverse;  // diffusers -> original, squeeze
  for (const auto& [original, target] : expand_rules(counts)) {
    // Two original names for the quant convs (LDM's top level, FLUX.2's nested): write LDM's.
    const auto it = inverse.find(target.name);
    if (it == inverse.end() || original == target.name)
      inverse[target.name] = {original, target.squeeze};
  }
  WeightStore out;
  for (const std::string& name : store.names()) {
    const size_t dot = name.rfind('.');
    const auto it = dot == std::string::npos ? inverse.end() : inverse.find(name.substr(0, dot));
    if (it == inverse.end())
      fail(
          "[convert] {}: tensor '{}' is not part of a diffusers autoencoder with {} levels and {} "
          "resnets per level",
          store.source_of(name), name, counts.levels, counts.layers_per_block);
    Tensor t = store.get(name);
    if (it->second.second && t.ndim() == 2) t = t.view({t.size(0), t.size(1), 1, 1});
    out.add(it->second.first + name.substr(dot), t, store.source_of(name));
  }
  return out;
}

}  // namespace zflow::io
