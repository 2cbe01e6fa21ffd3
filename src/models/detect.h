// What a set of weights is, told from its tensor names (and a few shapes): the model,
// the checkpoint layout, and the configuration the shapes imply. `zflow info` prints it;
// loaders pick their key map the same way.
#pragma once

#include <optional>
#include <string>

#include "io/weight_store.h"

namespace zflow::models {

struct DetectedComponent {
  std::string architecture;  // "z-image transformer", "qwen3 text encoder", "autoencoder kl"
  std::string layout;        // "diffusers", "original (ComfyUI / BFL)", ...
  std::string config;        // one line: the configuration inferred from the shapes
};

// nullopt when the names fit none of the models zflow knows.
std::optional<DetectedComponent> detect_component(const io::WeightStore& weights);

}  // namespace zflow::models
