// What a generated image records about how it was made: the A1111-style `parameters` text that
// image viewers and web UIs parse (prompt, "Negative prompt: ...", then "Key: value, ..."), and the
// full request as JSON so a run can be repeated exactly.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "pipeline/zimage_pipeline.h"

namespace zflow::pipeline {

// Where the init image and mask came from, for the record (the request holds only pixels).
struct ZImageSources {
  std::string init_image;
  std::string mask;
  std::string control_image;
  std::vector<std::string> reference_images;  // Omni's condition images
};

// A1111's layout:
//   <prompt>
//   Negative prompt: <negative>                      (only when CFG runs and it is not empty)
//   Steps: 8, Sampler: Euler[, Schedule type: Karras], CFG scale: 0, Seed: 42, Size: 1024x1024,
//   Model: <name>[, ...]
// CFG scale is Z-Image's g (A1111's usual scale would be 1 + g). Extra keys follow when they
// apply: Denoising strength, CFG normalization, CFG truncation, Shift, Batch size, Batch pos, and
// the ControlNet as A1111's ControlNet extension writes it (ControlNet 0: "Model: .., Weight: ..").
std::string a1111_parameters(const ZImageRequest& request, const ZImageSettings& settings,
                             const std::string& model_name, const std::string& controlnet_name,
                             int batch_index);

// Every request field with defaults resolved, plus the mode, model and the image's batch index.
nlohmann::json request_json(const ZImageRequest& request, const ZImageSettings& settings,
                            const std::string& model_name, const std::string& controlnet_name,
                            const ZImageSources& sources, int batch_index);

}  // namespace zflow::pipeline
