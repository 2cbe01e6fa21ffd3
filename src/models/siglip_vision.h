// SiglipVisionModel: SigLIP's vision tower (google/siglip-so400m-patch14-384, the image encoder
// of FLUX.1 Redux), built to transformers' module tree so weights bind by its names (prefix
// "vision_model." removed):
//   embeddings.patch_embedding.{weight [D, 3, p, p], bias [D]}: a p x p convolution, stride p
//   embeddings.position_embedding.weight [(S/p)^2, D]
//   encoder.layers.N.*: CLIP's pre-LN layer (clip_encoder.h), not causal, GELU-tanh
//   post_layernorm.{weight, bias} [D]
// (the attention-pooling head is not read: Redux takes last_hidden_state). Reference:
// transformers 5.23 models/siglip/modeling_siglip.py.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/image.h"
#include "io/weight_store.h"
#include "models/clip_encoder.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are so400m-patch14-384 (FLUX.1-Redux-dev image_encoder/config.json).
struct SiglipVisionConfig {
  int64_t hidden_size = 1152;
  int64_t intermediate_size = 4304;
  int num_hidden_layers = 27;
  int64_t num_attention_heads = 16;
  int64_t image_size = 384;
  int64_t patch_size = 14;
  float layer_norm_eps = 1e-6f;

  int64_t patches() const { return (image_size / patch_size) * (image_size / patch_size); }

  // From a transformers config.json (SiglipVisionConfig, or a SiglipConfig's vision_config).
  // Absent fields keep the defaults; hidden_act must be gelu_pytorch_tanh. Errors name source.
  static SiglipVisionConfig from_json(const std::string& json_text, const std::string& source);
  static SiglipVisionConfig from_json_file(const std::filesystem::path& path);
  // From the shapes of the weights (no prefix); heads = hidden / 72 (so400m's head size).
  static SiglipVisionConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;
};

class SiglipVisionModel {
 public:
  // Missing or wrong-shaped tensors are errors naming the tensor and its file.
  SiglipVisionModel(const SiglipVisionConfig& config, const io::WeightStore& weights,
                    const Placement& placement = {});
  const SiglipVisionConfig& config() const { return config_; }

  // The last hidden state [(S/p)^2, D] (float32, on the CPU) of an image already resized to
  // image_size x image_size and normalised to [-1, 1]: pixels [3, S, S] float32.
  Tensor encode(const Tensor& pixels) const;

 private:
  SiglipVisionConfig config_;
  Placement placement_;
  Tensor patch_w_, patch_b_;  // patch_w_ [D, p p 3]: the kernel in ops::patchify's order
  Tensor position_embedding_;
  std::vector<ClipEncoderLayer> layers_;
  Tensor post_ln_w_, post_ln_b_;
};

// SiglipImageProcessor as the Redux release configures it: Pillow bicubic to S x S, then
// x / 127.5 - 1 ((x / 255 - 0.5) / 0.5). Returns [3, S, S] float32.
Tensor siglip_pixels(const io::Image& image, int64_t size);

// The weights under SiglipVisionTransformer names: the prefix before
// "embeddings.patch_embedding.weight" ("vision_model." in transformers' image_encoder/ and
// ComfyUI's sigclip_vision_patch14_384.safetensors) is removed.
io::WeightStore siglip_vision_weights(const io::WeightStore& weights);

// From a transformers image_encoder/ folder (config.json + safetensors) or a single file.
SiglipVisionModel load_siglip_vision_model(const std::filesystem::path& path,
                                           const Placement& placement = {});

}  // namespace zflow::models
