#include "server/model_registry.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"
#include "core/log.h"

namespace zflow::server {

namespace fs = std::filesystem;

namespace {

uint64_t bytes_under(const fs::path& path) {
  if (path.empty() || !fs::exists(path)) return 0;
  if (!fs::is_directory(path)) return fs::file_size(path);
  uint64_t total = 0;
  for (const auto& e :
       fs::recursive_directory_iterator(path, fs::directory_options::follow_directory_symlink))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") total += e.file_size();
  return total;
}

}  // namespace

std::vector<LoraEntry> scan_weight_folder(const fs::path& folder, std::string_view what) {
  if (!fs::is_directory(folder))
    fail("[server] {} folder {} is not a folder", what, folder.string());
  std::vector<LoraEntry> found;
  for (const auto& e : fs::directory_iterator(folder)) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() &&
        (ext == ".safetensors" || ext == ".pth" || ext == ".pt" || ext == ".ckpt"))
      found.push_back({e.path().stem().string(), e.path()});
  }
  // By name, a safetensors file before a checkpoint of the same stem, which is then left out.
  std::sort(found.begin(), found.end(), [](const LoraEntry& a, const LoraEntry& b) {
    return std::pair(a.name, a.path.extension() != ".safetensors") <
           std::pair(b.name, b.path.extension() != ".safetensors");
  });
  const auto same =
      std::unique(found.begin(), found.end(), [&](const LoraEntry& a, const LoraEntry& b) {
        if (a.name != b.name) return false;
        log::info("[server] {} {}: {} has the same name; left out", what, a.name, b.path.string());
        return true;
      });
  found.erase(same, found.end());
  return found;
}

std::string lora_tags(std::span<const LoraChoice> loras) {
  std::string tags;
  for (const LoraChoice& l : loras)
    tags += fmt::format("{}<lora:{}:{}>", tags.empty() ? "" : " ", l.name, l.scale);
  return tags;
}

ModelEntry model_entry(const pipeline::ModelFiles& files) {
  const fs::path named = files.model_dir.empty() ? files.diffusion_model : files.model_dir;
  ModelEntry e;
  e.name = (named.filename().empty() ? named.parent_path() : named).stem().string();
  e.files = files;
  for (const auto* p : {&files.model_dir, &files.diffusion_model, &files.text_encoder,
                        &files.clip_l, &files.t5xxl, &files.vae})
    e.bytes += bytes_under(*p);
  return e;
}

std::vector<ModelEntry> scan_models_folder(const fs::path& folder) {
  if (!fs::is_directory(folder)) fail("[server] models folder {} is not a folder", folder.string());
  std::vector<ModelEntry> found;
  for (const auto& e : fs::directory_iterator(folder)) {
    if (!e.is_directory()) continue;
    if (!fs::exists(e.path() / "model_index.json")) {
      log::info("[server] {}: no model_index.json, skipped", e.path().string());
      continue;
    }
    found.push_back(model_entry({.model_dir = e.path()}));
  }
  std::sort(found.begin(), found.end(),
            [](const ModelEntry& a, const ModelEntry& b) { return a.name < b.name; });
  return found;
}

ModelRegistry::ModelRegistry(std::vector<ModelEntry> entries, uint64_t budget_bytes, Loader loader,
                             std::vector<LoraEntry> loras, std::vector<LoraEntry> controlnets)
    : entries_(std::move(entries)),
      budget_(budget_bytes),
      loader_(std::move(loader)),
      loras_(std::move(loras)),
      controlnets_(std::move(controlnets)) {
  for (size_t i = 0; i < entries_.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (entries_[i].name == entries_[j].name)
        fail("[server] two models are named '{}' ({} and {}); model names must be unique",
             entries_[i].name, entries_[j].files.model_dir.string(),
             entries_[i].files.model_dir.string());
  if (!entries_.empty()) default_ = entries_.front().name;
}

const ModelEntry& ModelRegistry::entry(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return e;
  fail("[server] model '{}' is not one this server offers (GET /v1/models lists them)", name);
}

bool ModelRegistry::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const ModelEntry& e) { return e.name == name; });
}

std::string ModelRegistry::default_model() const {
  std::lock_guard lock(mu_);
  return default_;
}

void ModelRegistry::set_default_model(const std::string& name) {
  entry(name);
  std::lock_guard lock(mu_);
  default_ = name;
}

bool ModelRegistry::has_lora(const std::string& name) const {
  return std::any_of(loras_.begin(), loras_.end(),
                     [&](const LoraEntry& l) { return l.name == name; });
}

bool ModelRegistry::has_controlnet(const std::string& name) const {
  return std::any_of(controlnets_.begin(), controlnets_.end(),
                     [&](const LoraEntry& c) { return c.name == name; });
}

void ModelRegistry::set_upscalers(std::vector<LoraEntry> upscalers, Device device) {
  upscalers_.clear();
  upscaler_descriptions_.clear();
  for (LoraEntry& u : upscalers) {
    try {
      upscaler_descriptions_[u.name] = models::describe_upscaler(u.path);
      upscalers_.push_back(std::move(u));
    } catch (const Error& e) {
      log::warn("[server] --upscaler-dir: {} is left out: {}", u.path.string(), e.what());
    }
  }
  upscaler_device_ = device;
}

const models::UpscalerDescription& ModelRegistry::upscaler_description(
    const std::string& name) const {
  const auto it = upscaler_descriptions_.find(name);
  ZF_CHECK(it != upscaler_descriptions_.end(), "[server] no upscaler named '{}'", name);
  return it->second;
}

bool ModelRegistry::has_upscaler(const std::string& name) const {
  return std::any_of(upscalers_.begin(), upscalers_.end(),
                     [&](const LoraEntry& u) { return u.name == name; });
}

std::shared_ptr<const models::Upscaler> ModelRegistry::acquire_upscaler(const std::string& name) {
  const auto entry = std::find_if(upscalers_.begin(), upscalers_.end(),
                                  [&](const LoraEntry& u) { return u.name == name; });
  ZF_CHECK(entry != upscalers_.end(), "[server] no upscaler named '{}'", name);
  const std::lock_guard lock(mu_);
  auto& slot = loaded_upscalers_[name];
  if (!slot) slot = models::load_upscaler(entry->path, models::Placement::on(upscaler_device_));
  return slot;
}

std::shared_ptr<const pipeline::ImageGenerator> ModelRegistry::acquire(
    const std::string& model, std::span<const LoraChoice> loras,
    std::span<const std::string> controlnets) {
  const ModelEntry& e = entry(model);
  pipeline::ModelFiles files = e.files;
  for (const LoraChoice& choice : loras) {
    const auto found = std::find_if(loras_.begin(), loras_.end(),
                                    [&](const LoraEntry& l) { return l.name == choice.name; });
    if (found == loras_.end())
      fail("[server] LoRA '{}' is not one this server offers (GET /sdapi/v1/loras lists them)",
           choice.name);
    files.loras.push_back({found->path, choice.scale});
  }
  std::string name = loras.empty() ? model : model + " " + lora_tags(loras);
  for (const std::string& controlnet : controlnets) {
    const auto found = std::find_if(controlnets_.begin(), controlnets_.end(),
                                    [&](const LoraEntry& c) { return c.name == controlnet; });
    if (found == controlnets_.end())
      fail("[server] ControlNet '{}' is not one this server offers (GET /controlnet/model_list)",
           controlnet);
    files.controlnets.push_back(found->path);
    name += fmt::format(" <controlnet:{}>", controlnet);
  }
  {
    std::lock_guard lock(mu_);
    const auto it = std::find_if(loaded_.begin(), loaded_.end(),
                                 [&](const Loaded& l) { return l.name == name; });
    if (it != loaded_.end()) {
      loaded_.splice(loaded_.begin(), loaded_, it);
      return loaded_.front().generator;
    }
    // Make room first, so the old and the new model are never both held past the budget. A
    // model still in use by a job (someone else holds its pointer) is kept.
    uint64_t held = e.bytes;
    for (const auto& l : loaded_) held += l.bytes;
    for (auto victim = loaded_.end(); budget_ > 0 && held > budget_ && victim != loaded_.begin();) {
      --victim;
      if (victim->generator.use_count() > 1) continue;
      log::info("[server] evicting model {} to fit the memory budget", victim->name);
      held -= victim->bytes;
      victim = loaded_.erase(victim);
    }
  }
  // Loading takes seconds to minutes; the lock stays free meanwhile so /v1/models and /metrics
  // keep answering. Only the queue's single worker loads, so a model is never loaded twice.
  log::info("[server] loading model {}", name);
  std::shared_ptr<const pipeline::ImageGenerator> generator = loader_(files);
  std::lock_guard lock(mu_);
  loaded_.push_front({name, e.bytes, generator});
  return generator;
}

std::vector<std::string> ModelRegistry::loaded() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& l : loaded_) names.push_back(l.name);
  return names;
}

std::vector<std::string> ModelRegistry::unload_idle() {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  std::erase_if(loaded_, [&](const Loaded& l) {
    if (l.generator.use_count() > 1) return false;  // a job holds it
    log::info("[server] unloading model {}", l.name);
    names.push_back(l.name);
    return true;
  });
  return names;
}

}  // namespace zflow::server
