#include "pipeline/zimage_metadata.h"

#include <fmt/format.h>

namespace zflow::pipeline {

std::string a1111_parameters(const ZImageRequest& request, const ZImageSettings& settings,
                             const std::string& model_name, const std::string& controlnet_name,
                             int batch_index) {
  std::string text = request.prompt + "\n";
  const bool cfg = settings.guidance > 0.0f;
  if (cfg && !request.negative_prompt.empty())
    text += "Negative prompt: " + request.negative_prompt + "\n";
  text +=
      fmt::format("Steps: {}, {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}", settings.steps,
                  a1111_sampling_fields({request.sampling.sampler, settings.schedule}),
                  settings.guidance, request.seed, settings.width, settings.height, model_name);
  text += variation_infotext(request.variation);
  if (starts_from_image(settings.mode))
    text += fmt::format(", Denoising strength: {}", settings.strength);
  if (cfg && request.cfg_normalization > 0.0f)
    text += fmt::format(", CFG normalization: {}", request.cfg_normalization);
  if (cfg && request.cfg_truncation < 1.0)
    text += fmt::format(", CFG truncation: {}", request.cfg_truncation);
  text += fmt::format(", Shift: {}", settings.shift);
  if (request.first_block_cache)
    text += fmt::format(", First block cache: {}", *request.first_block_cache);
  if (request.batch > 1)
    text += fmt::format(", Batch size: {}, Batch pos: {}", request.batch, batch_index);
  if (settings.controlled)
    text += fmt::format(", ControlNet 0: \"Model: {}, Weight: {}\"", controlnet_name,
                        request.control_scale);
  return text;
}

nlohmann::json request_json(const ZImageRequest& request, const ZImageSettings& settings,
                            const std::string& model_name, const std::string& controlnet_name,
                            const ZImageSources& sources, int batch_index) {
  nlohmann::json j = {
      {"model", model_name},
      {"mode", zimage_mode_name(settings.mode)},
      {"prompt", request.prompt},
      {"negative_prompt", request.negative_prompt},
      {"width", settings.width},
      {"height", settings.height},
      {"steps", settings.steps},
      {"guidance", settings.guidance},
      {"cfg_normalization", request.cfg_normalization},
      {"cfg_truncation", request.cfg_truncation},
      {"shift", settings.shift},
      {"sampler", flow_sampler_name(request.sampling.sampler)},
      {"scheduler", sigma_schedule_name(settings.schedule)},
      {"seed", request.seed},
      {"rng", request.normal_math == NormalMath::Avx2Cephes ? "torch-cpu-avx2" : "torch-cpu-libm"},
      {"batch", request.batch},
      {"batch_index", batch_index},
      {"max_sequence_length", request.max_sequence_length},
  };
  if (starts_from_image(settings.mode)) j["strength"] = settings.strength;
  if (varies(request.variation)) j["variation"] = variation_json(request.variation);
  if (request.first_block_cache) j["first_block_cache"] = *request.first_block_cache;
  if (settings.mode != ZImageMode::TextToImage && settings.mode != ZImageMode::Omni)
    j["init_image"] = sources.init_image;
  if (!request.references.empty()) j["reference_images"] = sources.reference_images;
  if (settings.mode == ZImageMode::Inpaint || settings.mode == ZImageMode::ControlInpaint)
    j["mask"] = sources.mask;
  if (settings.controlled) {
    j["controlnet"] = controlnet_name;
    j["control_image"] = sources.control_image;
    j["control_scale"] = request.control_scale;
  }
  return j;
}

}  // namespace zflow::pipeline
