#include "io/key_map_esrgan.h"

#include <regex>

#include "core/error.h"

namespace zflow::io {
namespace {

// The numbered layers of an original-layout file: model.{i}.weight for the top-level convs.
struct OriginalLayers {
  int blocks = 0;  // model.1.sub.{blocks} is the trunk conv
  int last = 0;    // model.{last} is conv_last
};

OriginalLayers original_layers(const WeightStore& store) {
  static const std::regex kTop(R"(^model\.(\d{1,6})\.weight$)");
  static const std::regex kTrunk(R"(^model\.1\.sub\.(\d{1,6})\.weight$)");
  OriginalLayers layers{-1, -1};
  std::smatch m;
  for (const auto& name : store.names()) {
    if (std::regex_match(name, m, kTop)) layers.last = std::max(layers.last, std::stoi(m[1]));
    if (std::regex_match(name, m, kTrunk)) layers.blocks = std::stoi(m[1]);
  }
  // conv_first, the trunk, log2(scale) x (upsample, conv, act), hr conv, act, conv_last.
  ZF_CHECK(layers.blocks >= 1 && layers.last >= 4 && (layers.last - 4) % 3 == 0,
           "[load] {}: the numbered layers (last 'model.{}.weight', trunk conv "
           "'model.1.sub.{}.weight') do not form an ESRGAN network",
           store.description(), layers.last, layers.blocks);
  return layers;
}

std::optional<std::string> original_to_basicsr(const std::string& name,
                                               const OriginalLayers& layers) {
  static const std::regex kBlockConv(
      R"(^model\.1\.sub\.(\d{1,6})\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$)");
  static const std::regex kBlockPlus(R"(^model\.1\.sub\.(\d{1,6})\.RDB([123])\.conv1x1\.weight$)");
  static const std::regex kTrunk(R"(^model\.1\.sub\.(\d{1,6})\.(weight|bias)$)");
  static const std::regex kTop(R"(^model\.(\d{1,6})\.(weight|bias)$)");
  std::smatch m;
  if (std::regex_match(name, m, kBlockConv))
    return "body." + m[1].str() + ".rdb" + m[2].str() + ".conv" + m[3].str() + "." + m[4].str();
  if (std::regex_match(name, m, kBlockPlus))
    return "body." + m[1].str() + ".rdb" + m[2].str() + ".conv1x1.weight";
  if (std::regex_match(name, m, kTrunk) && std::stoi(m[1]) == layers.blocks)
    return "conv_body." + m[2].str();
  if (!std::regex_match(name, m, kTop)) return std::nullopt;
  const int index = std::stoi(m[1]);
  const std::string what = "." + m[2].str();
  if (index == 0) return "conv_first" + what;
  if (index == layers.last) return "conv_last" + what;
  if (index == layers.last - 2) return "conv_hr" + what;
  if (index % 3 == 0 && index < layers.last - 2)
    return "conv_up" + std::to_string(index / 3) + what;
  return std::nullopt;
}

std::optional<std::string> bsrgan_to_basicsr(const std::string& name) {
  static const std::regex kBlockConv(R"(^RRDB_trunk\.(\d{1,6})\.RDB([123])\.conv([1-5])\.(.+)$)");
  static const std::regex kUp(R"(^upconv(\d{1,6})\.(weight|bias)$)");
  std::smatch m;
  if (std::regex_match(name, m, kBlockConv))
    return "body." + m[1].str() + ".rdb" + m[2].str() + ".conv" + m[3].str() + "." + m[4].str();
  if (std::regex_match(name, m, kUp)) return "conv_up" + m[1].str() + "." + m[2].str();
  for (const auto& [from, to] : {std::pair{"trunk_conv.", "conv_body."},
                                 {"HRconv.", "conv_hr."},
                                 {"conv_first.", "conv_first."},
                                 {"conv_last.", "conv_last."}})
    if (name.rfind(from, 0) == 0) return to + name.substr(std::string_view(from).size());
  return std::nullopt;
}

}  // namespace

WeightStore without_basicsr_prefix(const WeightStore& store) {
  for (const std::string prefix : {"params_ema.", "params."})
    for (const auto& name : store.names())
      if (name.starts_with(prefix)) return store.with_prefix_removed(prefix);
  return store;
}

std::string_view esrgan_layout_name(EsrganLayout layout) {
  switch (layout) {
    case EsrganLayout::BasicSR:
      return "BasicSR (Real-ESRGAN)";
    case EsrganLayout::Original:
      return "original ESRGAN";
    case EsrganLayout::Bsrgan:
      return "BSRGAN / RealSR";
  }
  return "?";
}

std::optional<EsrganLayout> detect_esrgan_layout(const WeightStore& store) {
  const WeightStore s = without_basicsr_prefix(store);
  if (s.contains("conv_first.weight") && s.contains("body.0.rdb1.conv1.weight"))
    return EsrganLayout::BasicSR;
  if (s.contains("model.0.weight") && s.contains("model.1.sub.0.RDB1.conv1.0.weight"))
    return EsrganLayout::Original;
  if (s.contains("conv_first.weight") && s.contains("RRDB_trunk.0.RDB1.conv1.weight"))
    return EsrganLayout::Bsrgan;
  return std::nullopt;
}

WeightStore esrgan_to_basicsr(const WeightStore& store) {
  const WeightStore s = without_basicsr_prefix(store);
  const std::optional<EsrganLayout> layout = detect_esrgan_layout(s);
  ZF_CHECK(layout.has_value(),
           "[load] {}: not an ESRGAN (RRDBNet) upscaler: expected 'conv_first.weight' with "
           "'body.0.rdb1.conv1.weight' (BasicSR / Real-ESRGAN) or 'RRDB_trunk.0.RDB1.conv1.weight' "
           "(BSRGAN), or 'model.0.weight' with 'model.1.sub.0.RDB1.conv1.0.weight' (ESRGAN)",
           store.description());
  if (*layout == EsrganLayout::BasicSR) return s;
  const bool original = *layout == EsrganLayout::Original;
  const OriginalLayers layers = original ? original_layers(s) : OriginalLayers{};
  return s.renamed([&](const std::string& name) -> std::optional<std::string> {
    const auto target = original ? original_to_basicsr(name, layers) : bsrgan_to_basicsr(name);
    ZF_CHECK(target.has_value(), "[load] {}: tensor '{}' is not part of an ESRGAN network",
             s.source_of(name), name);
    return target;
  });
}

}  // namespace zflow::io
