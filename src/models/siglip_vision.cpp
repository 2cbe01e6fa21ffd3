#include "models/siglip_vision.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <numeric>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/image_resize.h"
#include "models/config_json.h"

namespace zflow::models {
namespace {

constexpr const char* kPatchEmbedding = "embeddings.patch_embedding.weight";

void validate(const SiglipVisionConfig& c, const std::string& source) {
  ZF_CHECK(c.hidden_size >= 1 && c.intermediate_size >= 1 && c.num_hidden_layers >= 1 &&
               c.patch_size >= 1 && c.image_size >= c.patch_size,
           "[siglip] {}: sizes must be positive, the image at least one patch ({})", source,
           c.summary());
  ZF_CHECK(c.num_attention_heads >= 1 && c.hidden_size % c.num_attention_heads == 0,
           "[siglip] {}: num_attention_heads {} does not divide hidden_size {}", source,
           c.num_attention_heads, c.hidden_size);
  ZF_CHECK(c.layer_norm_eps > 0.0f, "[siglip] {}: layer_norm_eps {} is not positive", source,
           c.layer_norm_eps);
}

// Binds everything, in transformers' state-dict order. The patch kernel is bound as stored
// [D, 3, p, p]; the model reorders it for ops::patchify.
void bind_all(ParameterBinder& bind, const SiglipVisionConfig& c, Tensor& patch_w, Tensor& patch_b,
              Tensor& position, std::vector<ClipEncoderLayer>& layers, Tensor& post_w,
              Tensor& post_b) {
  const int64_t h = c.hidden_size, p = c.patch_size;
  patch_w = bind(kPatchEmbedding, {h, 3, p, p});
  patch_b = bind("embeddings.patch_embedding.bias", {h});
  position = bind("embeddings.position_embedding.weight", {c.patches(), h});
  layers.clear();
  for (int i = 0; i < c.num_hidden_layers; ++i)
    layers.push_back(bind_clip_encoder_layer(bind, fmt::format("encoder.layers.{}.", i), h,
                                             c.intermediate_size));
  post_w = bind("post_layernorm.weight", {h});
  post_b = bind("post_layernorm.bias", {h});
}

}  // namespace

std::string SiglipVisionConfig::summary() const {
  return fmt::format("hidden {} intermediate {} layers {} heads {} image {} patch {} eps {}",
                     hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                     image_size, patch_size, layer_norm_eps);
}

SiglipVisionConfig SiglipVisionConfig::from_json(const std::string& json_text,
                                                 const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "siglip", source);
  const ConfigFields f(siglip_vision_fields(j), "siglip", source);
  SiglipVisionConfig c;
  f.read("hidden_size", c.hidden_size);
  f.read("intermediate_size", c.intermediate_size);
  f.read("num_hidden_layers", c.num_hidden_layers);
  f.read("num_attention_heads", c.num_attention_heads);
  f.read("image_size", c.image_size);
  f.read("patch_size", c.patch_size);
  f.read("layer_norm_eps", c.layer_norm_eps);
  check_siglip_tower_fields(f, "siglip", source, "SigLIP");
  validate(c, source);
  return c;
}

SiglipVisionConfig SiglipVisionConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "siglip"), path.string());
}

SiglipVisionConfig SiglipVisionConfig::infer_from_weights(const io::WeightStore& w) {
  const Tensor patch = w.get(kPatchEmbedding);
  ZF_CHECK(patch.ndim() == 4 && patch.size(2) == patch.size(3),
           "[siglip] {}: '{}' has shape {}, expected [hidden, 3, patch, patch]",
           w.source_of(kPatchEmbedding), kPatchEmbedding, shape_str(patch.shape()));
  SiglipVisionConfig c;
  c.hidden_size = patch.size(0);
  c.patch_size = patch.size(2);
  const Tensor position = w.get("embeddings.position_embedding.weight");
  const auto side = static_cast<int64_t>(std::lround(std::sqrt(double(position.size(0)))));
  ZF_CHECK(side * side == position.size(0),
           "[siglip] {}: {} position embeddings do not make a square grid", w.description(),
           position.size(0));
  c.image_size = side * c.patch_size;
  c.intermediate_size = w.get("encoder.layers.0.mlp.fc1.weight").size(0);
  int layers = 0;
  while (w.contains(fmt::format("encoder.layers.{}.layer_norm1.weight", layers))) ++layers;
  c.num_hidden_layers = layers;
  ZF_CHECK(c.hidden_size % 72 == 0,
           "[siglip] {}: hidden size {} is not a multiple of so400m's head size 72; give the "
           "model's config.json",
           w.description(), c.hidden_size);
  c.num_attention_heads = c.hidden_size / 72;
  validate(c, w.description());
  log::info("[siglip] {}: no config.json, inferred from weight shapes: {}", w.description(),
            c.summary());
  return c;
}

SiglipVisionModel::SiglipVisionModel(const SiglipVisionConfig& config,
                                     const io::WeightStore& weights, const Placement& placement)
    : config_(config), placement_(placement) {
  validate(config_, weights.description());
  const std::string extra =
      fmt::format("encoder.layers.{}.layer_norm1.weight", config_.num_hidden_layers);
  ZF_CHECK(!weights.contains(extra),
           "[siglip] {}: holds '{}', past num_hidden_layers {}: the config is not this model's",
           weights.description(), extra, config_.num_hidden_layers);
  ParameterBinder bind(&weights, "config: " + config_.summary());
  bind_all(bind, config_, patch_w_, patch_b_, position_embedding_, layers_, post_ln_w_, post_ln_b_);
  if (placement_.device != Device::CPU) {
    const io::WeightStore placed = place_weights(weights, bind.take_specs(), placement_, "siglip");
    ParameterBinder bind_placed(&placed, "config: " + config_.summary());
    bind_all(bind_placed, config_, patch_w_, patch_b_, position_embedding_, layers_, post_ln_w_,
             post_ln_b_);
  }
  // [D, 3, p, p] (c, ky, kx) -> [D, p p 3] (ky, kx, c): the order ops::patchify lays out pixels.
  const int64_t d = config_.hidden_size, p = config_.patch_size;
  patch_w_ = patch_w_.to(Device::CPU)
                 .to(DType::F32)
                 .permute({0, 2, 3, 1})
                 .contiguous()
                 .view({d, p * p * 3})
                 .to(placement_.device);
}

Tensor SiglipVisionModel::encode(const Tensor& pixels) const {
  const int64_t s = config_.image_size, p = config_.patch_size;
  ZF_CHECK(pixels.ndim() == 3 && pixels.size(0) == 3 && pixels.size(1) == s && pixels.size(2) == s,
           "[siglip] encode: pixels of shape {}, expected [3, {}, {}]", shape_str(pixels.shape()),
           s, s);
  const int64_t n = config_.patches();
  const Tensor tokens =
      ops::patchify(placement_.activation(pixels.view({1, 3, s, s})), p, n).view({n, p * p * 3});
  std::vector<int32_t> positions(static_cast<size_t>(n));
  std::iota(positions.begin(), positions.end(), 0);
  Tensor x = ops::add(ops::linear(tokens, patch_w_, patch_b_),
                      ops::embedding(position_embedding_, positions, placement_.activations));
  const ClipEncoderLayerOptions options{.heads = config_.num_attention_heads,
                                        .eps = config_.layer_norm_eps,
                                        .causal = false,
                                        .activation = ops::GeluKind::kTanh};
  for (const ClipEncoderLayer& layer : layers_) x = clip_encoder_layer(layer, x, options);
  return float32_on(ops::layer_norm(x, post_ln_w_, post_ln_b_, config_.layer_norm_eps), Device::CPU)
      .contiguous();
}

Tensor siglip_pixels(const io::Image& image, int64_t size) {
  const io::Image resized =
      image.width == size && image.height == size
          ? image
          : io::resize_image(image, static_cast<int>(size), static_cast<int>(size),
                             io::ResampleFilter::Bicubic);
  Tensor pixels = Tensor::empty({3, size, size}, DType::F32);
  float* out = pixels.data<float>();
  const int64_t plane = size * size;
  for (int64_t i = 0; i < plane; ++i)
    for (int64_t c = 0; c < 3; ++c)
      out[c * plane + i] = static_cast<float>((resized.rgb[3 * i + c] / 255.0 - 0.5) / 0.5);
  return pixels;
}

io::WeightStore siglip_vision_weights(const io::WeightStore& weights) {
  return weights.module_weights(kPatchEmbedding, "SigLIP vision checkpoint");
}

SiglipVisionModel load_siglip_vision_model(const std::filesystem::path& path,
                                           const Placement& placement) {
  const io::WeightStore named = siglip_vision_weights(io::WeightStore::open(path));
  const auto json = io::component_config_json(path);
  return SiglipVisionModel(json ? SiglipVisionConfig::from_json_file(*json)
                                : SiglipVisionConfig::infer_from_weights(named),
                           named, placement);
}

}  // namespace zflow::models
