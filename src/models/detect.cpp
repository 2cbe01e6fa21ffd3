#include "models/detect.h"

#include <map>

#include "core/error.h"
#include "io/gguf.h"
#include "io/key_map_autoencoder.h"
#include "io/key_map_esrgan.h"
#include "io/key_map_flux.h"
#include "io/key_map_qwen3.h"
#include "io/key_map_zimage.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/esrgan.h"
#include "models/flux2_dit.h"
#include "models/flux_controlnet.h"
#include "models/flux_dit.h"
#include "models/lora.h"
#include "models/qwen3.h"
#include "models/siglip2_vision.h"
#include "models/siglip_vision.h"
#include "models/span.h"
#include "models/srvgg_compact.h"
#include "models/t5_encoder.h"
#include "models/upscaler.h"
#include "models/zimage_controlnet.h"
#include "models/zimage_dit.h"

namespace zflow::models {

namespace {

namespace fs = std::filesystem;

// The configuration inferred from the shapes, or why it cannot be inferred (some fields are not
// in the weights, e.g. a tiny model's group count): detection still reports what it found.
template <typename Infer>
std::string config_summary(Infer infer) {
  try {
    return infer().summary();
  } catch (const Error& e) {
    return std::string("not inferable from the shapes alone: ") + e.what();
  }
}

// The component's config.json read as Config when it has one, else as config_summary.
template <typename Config, typename Infer>
std::string config_summary(const std::optional<fs::path>& config_json, Infer infer) {
  if (!config_json) return config_summary(infer);
  try {
    return Config::from_json_file(*config_json).summary() + " (" + config_json->string() + ")";
  } catch (const Error& e) {
    return e.what();
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

std::optional<DetectedComponent> detect_zimage(const io::WeightStore& weights,
                                               const std::optional<fs::path>& config_json) {
  const io::WeightStore stripped = io::strip_zimage_prefix(weights);
  // Both layouts name the caption embedder the same; FLUX has none.
  if (!stripped.contains("cap_embedder.1.weight")) return std::nullopt;
  const io::ZImageLayout layout = io::detect_zimage_layout(stripped);
  const io::WeightStore diffusers_names =
      layout == io::ZImageLayout::Diffusers
          ? stripped
          : io::original_zimage_to_diffusers(stripped, io::count_zimage_blocks(stripped));
  const bool omni = stripped.contains("siglip_embedder.1.weight");
  return DetectedComponent{omni ? "z-image omni transformer" : "z-image transformer",
                           with_gguf(weights, std::string(io::zimage_layout_name(layout))),
                           config_summary<ZImageDiTConfig>(config_json, [&] {
                             return ZImageDiTConfig::infer_from_weights(diffusers_names);
                           })};
}

// A Z-Image ControlNet holds only its control blocks; its config is read for the released
// transformer (30 layers, 2 refiner layers, dim 3840).
std::optional<DetectedComponent> detect_zimage_controlnet(
    const io::WeightStore& weights, const std::optional<fs::path>& config_json) {
  if (!weights.contains("control_all_x_embedder.2-1.weight")) return std::nullopt;
  return DetectedComponent{
      "z-image controlnet", with_gguf(weights, "VideoX-Fun / diffusers"), config_summary([&] {
        return ZImageControlNetConfig::infer_from_weights(weights, ZImageDiTConfig{});
      })};
}

// A FLUX.1 ControlNet has the transformer's trunk and names (so it comes before detect_flux),
// plus its own.
std::optional<DetectedComponent> detect_flux_controlnet(
    const io::WeightStore& weights, const std::optional<fs::path>& config_json) {
  if (!is_flux_controlnet(weights)) return std::nullopt;
  const bool xlabs = !weights.contains("controlnet_x_embedder.weight");
  return DetectedComponent{
      "flux.1 controlnet",
      with_gguf(weights, xlabs ? "XLabs (BFL names)" : "diffusers (InstantX / Shakker-Labs)"),
      config_summary<FluxControlNetConfig>(config_json, [&] {
        return FluxControlNetConfig::infer_from_weights(flux_controlnet_diffusers_names(weights));
      })};
}

std::optional<DetectedComponent> detect_flux(const io::WeightStore& weights,
                                             const std::optional<fs::path>& config_json) {
  // The single-stream blocks tell FLUX from other MMDiTs with the same embedder names (SD3).
  if (!any_name_ends_with(weights, "single_blocks.0.linear1.weight") &&
      !any_name_ends_with(weights, "single_transformer_blocks.0.proj_mlp.weight") &&
      !any_name_ends_with(weights, "single_transformer_blocks.0.attn.to_qkv_mlp_proj.weight"))
    return std::nullopt;
  const io::WeightStore own = io::flux_transformer_weights(weights);
  const io::FluxLayout layout = io::detect_flux_layout(own);
  const io::WeightStore diffusers_names =
      layout == io::FluxLayout::Diffusers ? own : io::original_flux_to_diffusers(own);
  const bool guidance = io::flux_has_guidance(own);
  const std::string shown_layout = with_gguf(weights, std::string(io::flux_layout_name(layout)));
  if (io::detect_flux_generation(own) == io::FluxGeneration::Flux2)
    return DetectedComponent{guidance ? "flux.2-dev transformer" : "flux.2-klein transformer",
                             shown_layout, config_summary<Flux2DiTConfig>(config_json, [&] {
                               return Flux2DiTConfig::infer_from_weights(diffusers_names);
                             })};
  // FLUX.1 Canny / Depth read the control image's latents beside the noisy ones (twice the
  // features out), Fill the masked picture's and the folded mask too (more).
  const auto width = [&](const char* name, int d) {
    if (!diffusers_names.contains(name)) return int64_t{0};
    const Tensor t = diffusers_names.get(name);
    return t.ndim() == 2 ? t.size(d) : 0;
  };
  const int64_t in = width("x_embedder.weight", 1), out = width("proj_out.weight", 0);
  const char* architecture = in > 2 * out    ? "flux.1-fill transformer"
                             : in == 2 * out ? "flux.1-canny/depth transformer"
                             : guidance      ? "flux.1-dev transformer"
                                             : "flux.1-schnell transformer";
  return DetectedComponent{architecture, shown_layout,
                           config_summary<FluxDiTConfig>(config_json, [&] {
                             return FluxDiTConfig::infer_from_weights(diffusers_names);
                           })};
}

std::optional<DetectedComponent> detect_autoencoder(const io::WeightStore& weights,
                                                    const std::optional<fs::path>& config_json) {
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
  // FLUX.2's carries the BatchNorm statistics its pipelines normalise latents with.
  return DetectedComponent{
      stripped.contains("bn.running_mean") ? "flux.2 autoencoder kl" : "autoencoder kl",
      std::string(io::autoencoder_layout_name(layout)),
      config_summary<AutoencoderKLConfig>(
          config_json, [&] { return AutoencoderKLConfig::infer_from_weights(diffusers_names); })};
}

// Qwen3 and Mistral text models (the same decoder, Mistral's without q/k norms).
std::optional<DetectedComponent> detect_qwen3(const io::WeightStore& weights,
                                              const std::optional<fs::path>& config_json) {
  if (io::has_llamacpp_qwen3_names(weights)) {
    const io::WeightStore model = qwen3_model_weights(weights);
    const io::GgufHeader* gguf = weights.gguf_header();
    const bool qwen = weights.contains("blk.0.attn_q_norm.weight");
    return DetectedComponent{qwen ? "qwen3 text encoder" : "mistral text encoder",
                             with_gguf(weights, "llama.cpp names"), config_summary([&] {
                               return gguf ? Qwen3Config::from_gguf(
                                                 *gguf, model.get("embed_tokens.weight").size(0),
                                                 weights.description())
                                           : Qwen3Config::infer_from_weights(model);
                             })};
  }
  if (!any_name_ends_with(weights, "embed_tokens.weight") ||
      !any_name_ends_with(weights, "self_attn.q_proj.weight"))
    return std::nullopt;
  const io::WeightStore model = qwen3_model_weights(weights);
  const bool prefixed = !weights.contains("embed_tokens.weight");
  return DetectedComponent{
      any_name_ends_with(weights, "self_attn.q_norm.weight") ? "qwen3 text encoder"
                                                             : "mistral text encoder",
      prefixed ? "transformers causal LM / ComfyUI (prefixed)" : "transformers model",
      config_summary<Qwen3Config>(config_json,
                                  [&] { return Qwen3Config::infer_from_weights(model); })};
}

// FLUX.1's text encoders: CLIP-L (transformers CLIPTextModel or ComfyUI's clip_l) and T5-XXL
// (T5EncoderModel or ComfyUI's t5xxl).
std::optional<DetectedComponent> detect_clip_text(const io::WeightStore& weights,
                                                  const std::optional<fs::path>& config_json) {
  if (!any_name_ends_with(weights, "embeddings.token_embedding.weight") ||
      !any_name_ends_with(weights, "encoder.layers.0.self_attn.q_proj.weight"))
    return std::nullopt;
  return DetectedComponent{"clip text encoder", with_gguf(weights, "transformers"),
                           config_summary<ClipTextConfig>(config_json, [&] {
                             return ClipTextConfig::infer_from_weights(clip_text_weights(weights));
                           })};
}

std::optional<DetectedComponent> detect_t5(const io::WeightStore& weights,
                                           const std::optional<fs::path>& config_json) {
  if (!any_name_ends_with(weights, "encoder.final_layer_norm.weight") ||
      !any_name_ends_with(weights, "layer.0.SelfAttention.q.weight"))
    return std::nullopt;
  return DetectedComponent{
      "t5 encoder", with_gguf(weights, "transformers"),
      config_summary<T5EncoderConfig>(config_json, [&] {
        return T5EncoderConfig::infer_from_weights(t5_encoder_weights(weights));
      })};
}

// FLUX.1 Redux's two parts: SigLIP's vision tower (transformers SiglipVisionModel or ComfyUI's
// sigclip_vision file) and the image embedder (redux_up / redux_down); Z-Image Omni's SigLIP 2
// tower.
std::optional<DetectedComponent> detect_siglip(const io::WeightStore& weights,
                                               const std::optional<fs::path>& config_json) {
  // CLIP's vision tower has the same names and a pre-LN ("pre_layrnorm") SigLIP lacks.
  if (!any_name_ends_with(weights, "embeddings.patch_embedding.weight") ||
      !any_name_ends_with(weights, "post_layernorm.weight") ||
      any_name_ends_with(weights, "pre_layrnorm.weight"))
    return std::nullopt;
  // SigLIP 2's NaFlex tower (Z-Image Omni's) embeds patches with a linear, SigLIP's with a
  // convolution.
  const io::WeightStore tower = siglip_vision_weights(weights);
  if (tower.get("embeddings.patch_embedding.weight").ndim() == 2)
    return DetectedComponent{"siglip 2 vision tower", with_gguf(weights, "transformers"),
                             config_summary<Siglip2VisionConfig>(config_json, [&] {
                               return Siglip2VisionConfig::infer_from_weights(tower);
                             })};
  return DetectedComponent{"siglip vision tower", with_gguf(weights, "transformers"),
                           config_summary<SiglipVisionConfig>(config_json, [&] {
                             return SiglipVisionConfig::infer_from_weights(tower);
                           })};
}

std::optional<DetectedComponent> detect_redux(const io::WeightStore& weights,
                                              const std::optional<fs::path>&) {
  if (!weights.contains("redux_up.weight") || !weights.contains("redux_down.weight"))
    return std::nullopt;
  const Tensor up = weights.get("redux_up.weight"), down = weights.get("redux_down.weight");
  return DetectedComponent{"flux.1 redux image embedder", with_gguf(weights, "BFL / diffusers"),
                           fmt::format("image width {}, text width {}", up.size(1), down.size(0))};
}

// An ESRGAN upscaler (RRDBNet) in any of its layouts.
std::optional<DetectedComponent> detect_esrgan(const io::WeightStore& weights,
                                               const std::optional<fs::path>&) {
  const auto layout = io::detect_esrgan_layout(weights);
  if (!layout) return std::nullopt;
  return DetectedComponent{
      "esrgan upscaler", with_gguf(weights, std::string(io::esrgan_layout_name(*layout))),
      EsrganConfig::infer_from_weights(io::esrgan_to_basicsr(weights)).summary()};
}

// A SPAN upscaler.
std::optional<DetectedComponent> detect_span_upscaler(const io::WeightStore& weights,
                                                      const std::optional<fs::path>&) {
  if (detect_upscaler(weights) != UpscalerArchitecture::Span) return std::nullopt;
  return DetectedComponent{"span upscaler", with_gguf(weights, "SPAN"),
                           SpanConfig::infer_from_weights(weights).summary()};
}

// Real-ESRGAN's compact upscaler (SRVGGNetCompact), as Real-ESRGAN saves it or without `params`.
std::optional<DetectedComponent> detect_compact_upscaler(const io::WeightStore& weights,
                                                         const std::optional<fs::path>&) {
  const io::WeightStore unnested = io::without_basicsr_prefix(weights);
  if (detect_upscaler(unnested) != UpscalerArchitecture::Compact) return std::nullopt;
  return DetectedComponent{"real-esrgan compact upscaler", with_gguf(weights, "BasicSR"),
                           CompactConfig::infer_from_weights(unnested).summary()};
}

// A LoRA: down / up pairs, named for the model they patch.
std::optional<DetectedComponent> detect_lora(const io::WeightStore& weights,
                                             const std::optional<fs::path>&) {
  const std::optional<LoraContents> lora = inspect_lora(weights);
  if (!lora) return std::nullopt;
  const std::string model = lora->model == "FLUX"      ? "flux "
                            : lora->model == "Z-Image" ? "z-image "
                                                       : "";
  return DetectedComponent{lora->widened_input > 0 ? "flux.1 canny/depth lora" : model + "lora",
                           with_gguf(weights, lora->naming), lora->summary()};
}

}  // namespace

std::optional<DetectedComponent> detect_component(const io::WeightStore& weights,
                                                  const std::optional<fs::path>& config_json) {
  for (auto detect :
       {detect_zimage, detect_zimage_controlnet, detect_flux_controlnet, detect_flux,
        detect_clip_text, detect_t5, detect_siglip, detect_redux, detect_qwen3, detect_autoencoder,
        detect_esrgan, detect_compact_upscaler, detect_span_upscaler, detect_lora}) {
    if (auto found = detect(weights, config_json)) return found;
  }
  return std::nullopt;
}

}  // namespace zflow::models
