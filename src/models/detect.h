// What a set of weights is, told from its tensor names (and a few shapes): the model,
// the checkpoint layout, and the configuration the shapes imply. `zflow info` prints it;
// loaders pick their key map the same way.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "io/weight_store.h"

namespace zflow::models {

struct DetectedComponent {
  std::string architecture;  // "z-image transformer", "qwen3 text encoder", "autoencoder kl"
  std::string layout;        // "diffusers", "original (ComfyUI / BFL)", ...
  std::string config;        // one line: the configuration from config_json, else from the shapes
};

// nullopt when the names fit none of the models zflow knows. config_json is the component's
// own config (io::component_config_json), read in place of inferring from the shapes.
std::optional<DetectedComponent> detect_component(
    const io::WeightStore& weights, const std::optional<std::filesystem::path>& config_json = {});

}  // namespace zflow::models
