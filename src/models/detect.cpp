#include "models/detect.h"

#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/key_map_autoencoder.h"
#include "io/key_map_qwen3.h"
#include "io/key_map_zimage.h"
#include "models/autoencoder_kl.h"
#include "models/qwen3.h"
#include "models/zimage_dit.h"

namespace zflow::models {

namespace {

// The inferred configuration, or why it cannot be inferred (some fields are not in the
// weights, e.g. a tiny model's group count): detection still reports what it found.
template <typename Infer>
std::string config_summary(Infer infer) {
  try {
    return infer().summary();
  } catch (const Error& e) {
    return std::string("not inferable from the shapes alone: ") + e.what();
  }
}

bool any_name_ends_with(const io::WeightStore& weights, std::string_view suffix) {
  for (const auto& name : weights.names())
    if (name.ends_with(suffix)) return true;
  return false;
}

// A GGUF file's layout says so, with its general.architecture ("lumina2" for Z-Image in
// ComfyUI-GGUF files, "flux", "qwen3") and how many tensors of each type it stores.
std::string with_gguf(const io::WeightStore& weights, std::string layout) {
  const io::GgufHeader* gguf = weights.gguf_header();
  if (gguf == nullptr) return layout;
  std::map<std::string, int> counts;
  for (const io::GgufTensorInfo& t : gguf->tensors) ++counts[std::string(dtype_name(t.dtype))];
  std::string types;
  for (const auto& [name, n] : counts)
    types += fmt::format("{}{} {}", types.empty() ? "" : ", ", n, name);
  const io::GgufValue* arch = gguf->find("general.architecture");
  const std::string arch_name =
      arch != nullptr && arch->type() == io::GgufType::String ? arch->as_string("") : "none";
  return fmt::format("GGUF (architecture {}; {}), {}", arch_name, types, layout);
}

std::optional<DetectedComponent> detect_zimage(const io::WeightStore& weights) {
  const io::WeightStore stripped = io::strip_zimage_prefix(weights);
  // Both layouts name the caption embedder the same; FLUX has none.
  if (!stripped.contains("cap_embedder.1.weight")) return std::nullopt;
  const io::ZImageLayout layout = io::detect_zimage_layout(stripped);
  const io::WeightStore diffusers_names =
      layout == io::ZImageLayout::Diffusers
          ? stripped
          : io::original_zimage_to_diffusers(stripped, io::count_zimage_blocks(stripped));
  return DetectedComponent{
      "z-image transformer", with_gguf(weights, std::string(io::zimage_layout_name(layout))),
      config_summary([&] { return ZImageDiTConfig::infer_from_weights(diffusers_names); })};
}

std::optional<DetectedComponent> detect_autoencoder(const io::WeightStore& weights) {
  const io::WeightStore stripped = io::strip_autoencoder_prefix(weights);
  const bool has_encoder_or_decoder = any_name_ends_with(stripped, "conv_in.weight") &&
                                      (any_name_ends_with(stripped, "conv_out.weight"));
  if (!has_encoder_or_decoder) return std::nullopt;
  const io::AutoencoderLayout layout = io::detect_autoencoder_layout(stripped);
  const io::WeightStore diffusers_names =
      layout == io::AutoencoderLayout::Diffusers
          ? stripped
          : io::original_autoencoder_to_diffusers(stripped,
                                                  io::count_original_autoencoder_layers(stripped));
  return DetectedComponent{
      "autoencoder kl", std::string(io::autoencoder_layout_name(layout)),
      config_summary([&] { return AutoencoderKLConfig::infer_from_weights(diffusers_names); })};
}

std::optional<DetectedComponent> detect_qwen3(const io::WeightStore& weights) {
  if (io::has_llamacpp_qwen3_names(weights)) {
    const io::WeightStore model = qwen3_model_weights(weights);
    const io::GgufHeader* gguf = weights.gguf_header();
    return DetectedComponent{
        "qwen3 text encoder", with_gguf(weights, "llama.cpp names"), config_summary([&] {
          return gguf ? Qwen3Config::from_gguf(*gguf, model.get("embed_tokens.weight").size(0),
                                               weights.description())
                      : Qwen3Config::infer_from_weights(model);
        })};
  }
  if (!any_name_ends_with(weights, "embed_tokens.weight") ||
      !any_name_ends_with(weights, "self_attn.q_norm.weight"))
    return std::nullopt;
  const io::WeightStore model = qwen3_model_weights(weights);
  const bool prefixed = !weights.contains("embed_tokens.weight");
  return DetectedComponent{
      "qwen3 text encoder",
      prefixed ? "transformers causal LM / ComfyUI (prefixed)" : "transformers model",
      config_summary([&] { return Qwen3Config::infer_from_weights(model); })};
}

int count_prefixed(const io::WeightStore& weights, const std::string& kind,
                   const std::string& suffix) {
  int n = 0;
  while (weights.contains(fmt::format("{}.{}.{}", kind, n, suffix))) ++n;
  return n;
}

// FLUX.1 in BFL's layout (the dev / schnell single files, city96's GGUFs, ComfyUI's
// model.diffusion_model.* checkpoints). zflow does not run FLUX yet; detection says what it is.
std::optional<DetectedComponent> detect_flux(const io::WeightStore& weights) {
  io::WeightStore w = weights;
  for (const std::string& name : weights.names())
    if (name.starts_with("model.diffusion_model.")) {
      w = weights.with_prefix_removed("model.diffusion_model.");
      break;
    }
  if (!w.contains("double_blocks.0.img_attn.qkv.weight") || !w.contains("img_in.weight"))
    return std::nullopt;
  const Tensor img_in = w.get("img_in.weight");
  const std::string config =
      fmt::format("hidden {} in_channels {} double blocks {} single blocks {} {}", img_in.size(0),
                  img_in.size(1), count_prefixed(w, "double_blocks", "img_attn.qkv.weight"),
                  count_prefixed(w, "single_blocks", "linear1.weight"),
                  w.contains("guidance_in.in_layer.weight") ? "guidance-distilled (dev)"
                                                            : "no guidance embedding (schnell)");
  return DetectedComponent{"flux.1 transformer", with_gguf(weights, "original (BFL)"), config};
}

}  // namespace

std::optional<DetectedComponent> detect_component(const io::WeightStore& weights) {
  for (auto detect : {detect_zimage, detect_qwen3, detect_flux, detect_autoencoder}) {
    if (auto found = detect(weights)) return found;
  }
  return std::nullopt;
}

}  // namespace zflow::models
