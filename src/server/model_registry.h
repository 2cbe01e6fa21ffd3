// The models a server may run, by name: named on the command line or found in a models folder,
// loaded on first use and kept while they fit a memory budget, the least recently used evicted
// first. LoRAs, ControlNets and upscalers likewise come from one folder each, by name; a model with
// LoRAs merged in, or with a ControlNet, is loaded and kept as a model of its own. Requests name
// models and LoRAs only by these names, so no request can reach a file outside the configured
// folders.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/upscaler.h"
#include "pipeline/generator.h"

namespace zflow::server {

struct ModelEntry {
  std::string name;
  pipeline::ModelFiles files;
  uint64_t bytes = 0;  // on-disk size of its weights: what loading it will hold
};

// A LoRA (or ControlNet) a request may ask for: `name` is its file's stem in its folder.
struct LoraEntry {
  std::string name;
  std::filesystem::path path;
};
// One LoRA of a request, by name, with its strength.
struct LoraChoice {
  std::string name;
  float scale = 1.0f;
  bool operator==(const LoraChoice&) const = default;
};
// Every .safetensors file of `folder` (not its subfolders), and every PyTorch checkpoint (.pth,
// .pt, .ckpt: most upscalers are published so) whose stem no safetensors file has, sorted by name;
// `what` ("LoRA", "ControlNet", "upscaler") names the folder in errors.
std::vector<LoraEntry> scan_weight_folder(const std::filesystem::path& folder,
                                          std::string_view what);
// "<lora:style:0.8> <lora:ink:0.5>", as A1111 writes them: how a loaded model with LoRAs is named.
std::string lora_tags(std::span<const LoraChoice> loras);

// The entries a models folder offers: every subfolder holding a diffusers model_index.json.
// A folder without one, or without a tokenizer/, is skipped with a log line.
std::vector<ModelEntry> scan_models_folder(const std::filesystem::path& folder);
// An entry for one model given by its files; the name is the folder's or the file's stem.
ModelEntry model_entry(const pipeline::ModelFiles& files);

class ModelRegistry {
 public:
  using Loader =
      std::function<std::unique_ptr<pipeline::ImageGenerator>(const pipeline::ModelFiles&)>;

  // budget_bytes: how much weight may stay loaded (0: no limit). The first entry is the default.
  ModelRegistry(std::vector<ModelEntry> entries, uint64_t budget_bytes,
                Loader loader = pipeline::load_generator, std::vector<LoraEntry> loras = {},
                std::vector<LoraEntry> controlnets = {});

  const std::vector<ModelEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const;
  std::string default_model() const;
  void set_default_model(const std::string& name);  // throws for an unknown name

  const std::vector<LoraEntry>& loras() const { return loras_; }
  bool has_lora(const std::string& name) const;
  const std::vector<LoraEntry>& controlnets() const { return controlnets_; }
  bool has_controlnet(const std::string& name) const;

  // Upscalers (--upscaler-dir), by name, for the hires fix and A1111's extras: loaded on first use
  // onto `device` and kept (tens of megabytes each, outside the budget). Set before the server
  // starts; each file is read for its architecture and scale then, and one that is no upscaler
  // zflow runs is left out with a warning naming it.
  void set_upscalers(std::vector<LoraEntry> upscalers, Device device);
  const std::vector<LoraEntry>& upscalers() const { return upscalers_; }
  bool has_upscaler(const std::string& name) const;
  const models::UpscalerDescription& upscaler_description(const std::string& name) const;
  // Throws Error for an unknown name or a file that fails to load.
  std::shared_ptr<const models::Upscaler> acquire_upscaler(const std::string& name);

  // The named model with `loras` merged in, in that order (none: the model as it is), and the
  // named ControlNets beside it (none, one, or several side by side), loading it first if needed
  // (which may evict others that no job is using). Throws Error for an unknown model, LoRA or
  // ControlNet name, or a model that fails to load (a Z-Image model with two ControlNets, say).
  std::shared_ptr<const pipeline::ImageGenerator> acquire(
      const std::string& name, std::span<const LoraChoice> loras = {},
      std::span<const std::string> controlnets = {});
  // Most recently used first; a model with LoRAs as "name <lora:style:0.8>", with ControlNets as
  // "name <controlnet:canny> <controlnet:depth>".
  std::vector<std::string> loaded() const;
  // Lets go of every loaded model no job is using (A1111's unload-checkpoint: the memory back for
  // other programs; the next request loads its model again). Returns their names.
  std::vector<std::string> unload_idle();

 private:
  const ModelEntry& entry(const std::string& name) const;

  struct Loaded {
    std::string name;
    uint64_t bytes;
    std::shared_ptr<const pipeline::ImageGenerator> generator;
  };

  const std::vector<ModelEntry> entries_;
  const uint64_t budget_;
  Loader loader_;
  const std::vector<LoraEntry> loras_;
  const std::vector<LoraEntry> controlnets_;
  std::vector<LoraEntry> upscalers_;
  std::map<std::string, models::UpscalerDescription> upscaler_descriptions_;
  Device upscaler_device_ = Device::CPU;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<const models::Upscaler>> loaded_upscalers_;
  std::list<Loaded> loaded_;  // most recently used first
  std::string default_;
};

}  // namespace zflow::server
