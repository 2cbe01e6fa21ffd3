// Siglip2VisionModel: SigLIP 2's NaFlex vision tower (the image encoder of Z-Image Omni), built to
// transformers' module tree so weights bind by its names (a "vision_model." prefix is removed):
//   embeddings.patch_embedding.{weight [D, p p 3], bias [D]}: a linear on each p x p patch,
//     its pixels in (row, column, channel) order
//   embeddings.position_embedding.weight [n, D]: a sqrt(n) x sqrt(n) grid of learned positions,
//     resized to each image's patch grid (bilinear with antialiasing)
//   encoder.layers.N.*: CLIP's pre-LN layer (clip_encoder.h), not causal, GELU-tanh
//   post_layernorm.{weight, bias} [D]
// Unlike SigLIP 1 (siglip_vision.h) the image keeps its aspect ratio: it becomes rows x cols
// patches, at most max_num_patches of them. The attention-pooling head is not read (Omni takes
// last_hidden_state). Reference: transformers 5.23 models/siglip2/modeling_siglip2.py and
// image_processing_pil_siglip2.py.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/image.h"
#include "io/weight_store.h"
#include "models/clip_encoder.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are google/siglip2-so400m-patch16-naflex's.
struct Siglip2VisionConfig {
  int64_t hidden_size = 1152;
  int64_t intermediate_size = 4304;
  int num_hidden_layers = 27;
  int64_t num_attention_heads = 16;
  int64_t patch_size = 16;
  int64_t num_patches = 256;  // the learned position grid: a square of this many
  float layer_norm_eps = 1e-6f;

  int64_t position_side() const;  // sqrt(num_patches)

  // From a transformers config.json (Siglip2VisionConfig, or a Siglip2Config's vision_config).
  // Absent fields keep the defaults; hidden_act must be gelu_pytorch_tanh. Errors name source.
  static Siglip2VisionConfig from_json(const std::string& json_text, const std::string& source);
  static Siglip2VisionConfig from_json_file(const std::filesystem::path& path);
  // From the shapes of the weights (no prefix); heads = hidden / 72 (so400m's head size).
  static Siglip2VisionConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;
};

// Siglip2ImageProcessor's settings (siglip_processor/preprocessor_config.json).
struct Siglip2ProcessorConfig {
  int64_t patch_size = 16;
  int64_t max_num_patches = 256;

  // Only Siglip2's own normalisation ((x / 255 - 0.5) / 0.5) and bilinear resampling are
  // implemented: other values are errors naming the field.
  static Siglip2ProcessorConfig from_json_file(const std::filesystem::path& path);
};

// An image as the tower reads it: rows x cols patches, pixels [rows * cols, p p 3] float32 in
// (patch row, patch column; pixel row, pixel column, channel) order.
struct Siglip2Patches {
  int64_t rows = 0, cols = 0;
  Tensor pixels;
};

// The patch grid Siglip2ImageProcessor resizes an image of width x height to: the largest scale
// (found by its binary search) whose sides, rounded up to whole patches, give at most
// max_num_patches patches. Returns {rows, cols}.
std::pair<int64_t, int64_t> siglip2_patch_grid(int width, int height, int64_t patch_size,
                                               int64_t max_num_patches);

// Siglip2ImageProcessor (its Pillow backend): Pillow bilinear to the grid's size, x / 127.5 - 1,
// cut into patches. (Its torchvision backend resizes uint8 with its own antialiasing, which can
// differ from Pillow's by one level.)
Siglip2Patches siglip2_patches(const io::Image& image, const Siglip2ProcessorConfig& processor);

class Siglip2VisionModel {
 public:
  // Missing or wrong-shaped tensors are errors naming the tensor and its file.
  Siglip2VisionModel(const Siglip2VisionConfig& config, const io::WeightStore& weights,
                     const Placement& placement = {});
  const Siglip2VisionConfig& config() const { return config_; }

  // The last hidden state [rows * cols, D] (float32, on the CPU), one row per patch in the
  // patches' order. Patches of another patch size than the tower's are an error.
  Tensor encode(const Siglip2Patches& patches) const;

 private:
  // The learned positions resized to rows x cols: [rows * cols, D] float32 on the CPU.
  Tensor positions(int64_t rows, int64_t cols) const;

  Siglip2VisionConfig config_;
  Placement placement_;
  Tensor patch_w_, patch_b_;
  Tensor position_grid_;  // [side, side, D] float32 on the CPU
  std::vector<ClipEncoderLayer> layers_;
  Tensor post_ln_w_, post_ln_b_;
};

// From a transformers siglip/ folder (config.json + safetensors) or a single file.
Siglip2VisionModel load_siglip2_vision_model(const std::filesystem::path& path,
                                             const Placement& placement = {});

}  // namespace zflow::models
