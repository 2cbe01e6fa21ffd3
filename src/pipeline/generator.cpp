#include "pipeline/generator.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "io/weight_store.h"
#include "models/detect.h"
#include "pipeline/flux_generator.h"
#include "pipeline/zimage_generator.h"
#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

namespace {

namespace fs = std::filesystem;

enum class Family { ZImage, Flux1 };

// A diffusers folder names its pipeline class in model_index.json; a lone diffusion model file is
// told by its tensor names.
Family detect_family(const ModelFiles& files) {
  if (!files.model_dir.empty()) {
    const fs::path index = files.model_dir / "model_index.json";
    if (!fs::exists(index))
      fail("[model] {}: not a diffusers folder (no model_index.json)", files.model_dir.string());
    const auto json = nlohmann::json::parse(read_text_file(index, "model"), nullptr, false);
    const std::string cls =
        json.is_object() && json.contains("_class_name") && json["_class_name"].is_string()
            ? json["_class_name"].get<std::string>()
            : "";
    if (cls.rfind("ZImage", 0) == 0) return Family::ZImage;
    if (cls.rfind("Flux", 0) == 0 && cls.rfind("Flux2", 0) != 0) return Family::Flux1;
    fail(
        "[model] {}: pipeline class '{}' is not one zflow runs (expected a ZImage or FLUX.1 "
        "pipeline)",
        index.string(), cls);
  }
  if (files.diffusion_model.empty())
    fail("[model] no model: give a diffusers folder or a diffusion model file");
  const auto found = models::detect_component(io::WeightStore::open(files.diffusion_model));
  if (found && found->architecture == "z-image transformer") return Family::ZImage;
  if (found && found->architecture.rfind("flux.1", 0) == 0) return Family::Flux1;
  fail(
      "[model] {}: holds {}, not a diffusion model zflow runs (expected a Z-Image or FLUX.1 "
      "transformer)",
      files.diffusion_model.string(), found ? found->architecture : "no model zflow knows");
}

}  // namespace

int denoising_steps(int steps, double strength, bool from_image) {
  return from_image ? steps - img2img_start(steps, strength) : steps;
}

std::unique_ptr<ImageGenerator> load_generator(const ModelFiles& files) {
  switch (detect_family(files)) {
    case Family::ZImage:
      return load_zimage_generator(files);
    case Family::Flux1:
      return load_flux_generator(files);
  }
  fail("[model] unreachable family");
}

}  // namespace zflow::pipeline
