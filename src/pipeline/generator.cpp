#include "pipeline/generator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "io/file_hash.h"
#include "io/weight_store.h"
#include "models/detect.h"
#include "pipeline/flux2_generator.h"
#include "pipeline/flux_generator.h"
#include "pipeline/hires_fix.h"
#include "pipeline/mask_crop.h"
#include "pipeline/seed_per_image.h"
#include "pipeline/zimage_generator.h"
#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

namespace {

namespace fs = std::filesystem;

enum class Family { ZImage, Flux1, Flux2 };

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
    if (cls.rfind("Flux2", 0) == 0) return Family::Flux2;
    if (cls.rfind("Flux", 0) == 0) return Family::Flux1;
    fail(
        "[model] {}: pipeline class '{}' is not one zflow runs (expected a ZImage, FLUX.1 or "
        "FLUX.2 pipeline)",
        index.string(), cls);
  }
  if (files.diffusion_model.empty())
    fail("[model] no model: give a diffusers folder or a diffusion model file");
  const auto found = models::detect_component(io::WeightStore::open(files.diffusion_model));
  if (found && (found->architecture == "z-image transformer" ||
                found->architecture == "z-image omni transformer"))
    return Family::ZImage;
  if (found && found->architecture.rfind("flux.1", 0) == 0) return Family::Flux1;
  if (found && found->architecture.rfind("flux.2", 0) == 0) return Family::Flux2;
  fail(
      "[model] {}: holds {}, not a diffusion model zflow runs (expected a Z-Image, FLUX.1 or "
      "FLUX.2 transformer)",
      files.diffusion_model.string(), found ? found->architecture : "no model zflow knows");
}

}  // namespace

std::vector<std::string> ImageSources::reference_names(size_t count) const {
  std::vector<std::string> names = reference_images;
  for (size_t i = names.size(); i < count; ++i)
    names.push_back(fmt::format("reference_images[{}]", i));
  return names;
}

std::vector<std::string> ImageSources::control_names(size_t count) const {
  std::vector<std::string> names = control_images;
  for (size_t i = names.size(); i < count; ++i)
    names.push_back(fmt::format("control_images[{}]", i));
  return names;
}

int denoising_steps(int steps, double strength, bool from_image) {
  return from_image ? steps - img2img_start(steps, strength) : steps;
}

namespace {

// A generator whose transformer has LoRAs merged in: its records say which, as A1111 quotes a
// list (`LoRAs: "style.safetensors: 0.8, ink.safetensors: 0.5"`), with A1111's short hashes by
// which Civitai links the files (`Lora hashes: "style: 0123456789ab, ink: ..."`), and as JSON.
class WithLoras final : public ImageGenerator {
 public:
  WithLoras(std::unique_ptr<ImageGenerator> inner, std::vector<models::LoraFile> loras)
      : inner_(std::move(inner)), loras_(std::move(loras)) {
    for (const models::LoraFile& lora : loras_) hashes_.push_back(io::lora_short_hash(lora.path));
  }

  const std::string& model_name() const override { return inner_->model_name(); }
  std::string architecture() const override { return inner_->architecture(); }
  GenerationSettings resolve(const GenerationRequest& request) const override {
    return inner_->resolve(request);
  }
  std::vector<io::Image> generate(const GenerationRequest& request,
                                  const RunControl& control) const override {
    return inner_->generate(request, control);
  }
  bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const override {
    return inner_->can_share_forwards(a, b);
  }
  std::vector<std::vector<io::Image>> generate_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const override {
    return inner_->generate_together(requests, control);
  }
  std::optional<LatentSpace> latent_space() const override { return inner_->latent_space(); }
  std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                const RunControl& control) const override {
    return inner_->generate_latents_together(requests, control);
  }
  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    ImageRecord r = inner_->record(request, sources, batch_index);
    std::vector<std::string> listed, hashes;
    nlohmann::json json = nlohmann::json::array();
    for (size_t i = 0; i < loras_.size(); ++i) {
      const models::LoraFile& lora = loras_[i];
      const std::string name = lora.path.filename().string();
      listed.push_back(fmt::format("{}: {}", name, lora.scale));
      // A1111 names a LoRA by its alias, the file's stem, without ':' and ','.
      std::string alias = lora.path.stem().string();
      std::erase_if(alias, [](char c) { return c == ':' || c == ','; });
      hashes.push_back(fmt::format("{}: {}", alias, hashes_[i]));
      json.push_back({{"file", name}, {"scale", lora.scale}, {"hash", hashes_[i]}});
    }
    r.parameters += fmt::format(", LoRAs: \"{}\", Lora hashes: \"{}\"", fmt::join(listed, ", "),
                                fmt::join(hashes, ", "));
    r.request["loras"] = json;
    return r;
  }

 private:
  std::unique_ptr<ImageGenerator> inner_;
  std::vector<models::LoraFile> loras_;
  std::vector<std::string> hashes_;  // io::lora_short_hash of each
};

std::unique_ptr<ImageGenerator> load_family(const ModelFiles& files) {
  const Family family = detect_family(files);
  ZF_CHECK(family == Family::Flux1 || files.redux.empty(),
           "[model] --redux: FLUX.1 Redux runs with FLUX.1 dev or schnell, and {} is not FLUX.1",
           (files.model_dir.empty() ? files.diffusion_model : files.model_dir).string());
  // --siglip is Redux's SigLIP tower, or Z-Image Omni's SigLIP 2 one.
  ZF_CHECK(family != Family::Flux2 || files.siglip.empty(),
           "[model] --siglip: a SigLIP tower is for FLUX.1 Redux or Z-Image Omni, and {} is "
           "FLUX.2",
           (files.model_dir.empty() ? files.diffusion_model : files.model_dir).string());
  switch (family) {
    case Family::ZImage:
      return load_zimage_generator(files);
    case Family::Flux1:
      return load_flux_generator(files);
    case Family::Flux2:
      ZF_CHECK(files.controlnets.empty(),
               "[model] ControlNet {}: zflow runs ControlNets with Z-Image and FLUX.1, and {} is "
               "FLUX.2",
               files.controlnets.empty() ? "" : files.controlnets.front().string(),
               (files.model_dir.empty() ? files.diffusion_model : files.model_dir).string());
      return load_flux2_generator(files);
  }
  fail("[model] unreachable family");
}

}  // namespace

models::Placement placement_for(const ModelFiles& files) {
  ZF_CHECK(!files.offload || files.device == Device::CUDA,
           "[load] --offload streams weights to a GPU, but the models run on the {} (use "
           "--device cuda)",
           device_name(files.device));
  models::Placement placement = models::Placement::on(files.device);
  placement.offload = files.offload;
  return placement;
}

std::vector<Tensor> ImageGenerator::generate_latents_together(std::span<const GenerationRequest>,
                                                              const RunControl&) const {
  fail(
      "[hires] {} cannot hand over its latents: latent upscalers work with Z-Image and FLUX.1; "
      "name a pixel upscaler (Lanczos, Nearest or an upscaler model)",
      architecture());
}

std::unique_ptr<ImageGenerator> load_generator(const ModelFiles& files) {
  placement_for(files);  // refuses --offload without a GPU before any file is read
  std::unique_ptr<ImageGenerator> generator =
      with_hires_fix(with_seed_per_image(with_mask_preparation(load_family(files))));
  if (files.loras.empty()) return generator;
  return std::make_unique<WithLoras>(std::move(generator), files.loras);
}

}  // namespace zflow::pipeline
