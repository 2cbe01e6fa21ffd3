#include "models/siglip2_vision.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/image_resize.h"
#include "models/config_json.h"
#include "models/parameters.h"

namespace zflow::models {
namespace {

constexpr const char* kPatchEmbedding = "embeddings.patch_embedding.weight";
constexpr const char* kPositions = "embeddings.position_embedding.weight";

void validate(const Siglip2VisionConfig& c, const std::string& source) {
  ZF_CHECK(c.hidden_size >= 1 && c.intermediate_size >= 1 && c.num_hidden_layers >= 1 &&
               c.patch_size >= 1 && c.num_patches >= 1,
           "[siglip2] {}: sizes must be positive ({})", source, c.summary());
  const int64_t side = c.position_side();
  ZF_CHECK(side * side == c.num_patches,
           "[siglip2] {}: num_patches {} is not a square grid of positions", source, c.num_patches);
  ZF_CHECK(c.num_attention_heads >= 1 && c.hidden_size % c.num_attention_heads == 0,
           "[siglip2] {}: num_attention_heads {} does not divide hidden_size {}", source,
           c.num_attention_heads, c.hidden_size);
  ZF_CHECK(c.layer_norm_eps > 0.0f, "[siglip2] {}: layer_norm_eps {} is not positive", source,
           c.layer_norm_eps);
}

// Binds everything, in transformers' state-dict order.
void bind_all(ParameterBinder& bind, const Siglip2VisionConfig& c, Tensor& patch_w, Tensor& patch_b,
              Tensor& positions, std::vector<ClipEncoderLayer>& layers, Tensor& post_w,
              Tensor& post_b) {
  const int64_t h = c.hidden_size, p = c.patch_size;
  patch_w = bind(kPatchEmbedding, {h, 3 * p * p});
  patch_b = bind("embeddings.patch_embedding.bias", {h});
  positions = bind(kPositions, {c.num_patches, h});
  layers.clear();
  for (int i = 0; i < c.num_hidden_layers; ++i)
    layers.push_back(bind_clip_encoder_layer(bind, fmt::format("encoder.layers.{}.", i), h,
                                             c.intermediate_size));
  post_w = bind("post_layernorm.weight", {h});
  post_b = bind("post_layernorm.bias", {h});
}

// One axis of torch's bilinear interpolation with antialias=True (align_corners=False), in
// float as its CPU kernel computes it: output i averages the inputs within `support` of its
// centre scale * (i + 0.5) with triangle weights, the triangle widened by the reduction factor
// when shrinking (then it averages rather than samples), the weights normalised to sum 1.
struct AxisTaps {
  std::vector<int64_t> first, count;
  std::vector<std::vector<float>> weights;
};

AxisTaps antialiased_bilinear_taps(int64_t in, int64_t out) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  const float support = scale >= 1.0f ? scale : 1.0f;
  const float inv_scale = scale >= 1.0f ? 1.0f / scale : 1.0f;
  AxisTaps taps;
  for (int64_t i = 0; i < out; ++i) {
    const float center = scale * (static_cast<float>(i) + 0.5f);
    const int64_t lo = std::max<int64_t>(static_cast<int64_t>(center - support + 0.5f), 0);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(center + support + 0.5f), in) - lo;
    std::vector<float> w(static_cast<size_t>(n));
    float total = 0.0f;
    for (int64_t j = 0; j < n; ++j) {
      const float x = std::abs((static_cast<float>(j + lo) - center + 0.5f) * inv_scale);
      w[static_cast<size_t>(j)] = x < 1.0f ? 1.0f - x : 0.0f;
      total += w[static_cast<size_t>(j)];
    }
    if (total != 0.0f)
      for (float& v : w) v /= total;
    taps.first.push_back(lo);
    taps.count.push_back(n);
    taps.weights.push_back(std::move(w));
  }
  return taps;
}

// grid [rows, cols, D] float32 resized along axis 0 (rows) or 1 (cols) to `size`.
Tensor resize_axis(const Tensor& grid, int axis, int64_t size) {
  const int64_t rows = grid.size(0), cols = grid.size(1), d = grid.size(2);
  const int64_t in = axis == 0 ? rows : cols;
  if (in == size) return grid;
  const AxisTaps taps = antialiased_bilinear_taps(in, size);
  const int64_t out_rows = axis == 0 ? size : rows, out_cols = axis == 0 ? cols : size;
  Tensor out = Tensor::empty({out_rows, out_cols, d}, DType::F32);
  const float* src = grid.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < out_rows; ++r)
    for (int64_t c = 0; c < out_cols; ++c) {
      const int64_t i = axis == 0 ? r : c;
      const auto& w = taps.weights[static_cast<size_t>(i)];
      float* o = dst + (r * out_cols + c) * d;
      for (int64_t k = 0; k < d; ++k) {
        float sum = 0.0f;
        for (int64_t j = 0; j < taps.count[static_cast<size_t>(i)]; ++j) {
          const int64_t at = taps.first[static_cast<size_t>(i)] + j;
          const int64_t sr = axis == 0 ? at : r, sc = axis == 0 ? c : at;
          sum += src[(sr * cols + sc) * d + k] * w[static_cast<size_t>(j)];
        }
        o[k] = sum;
      }
    }
  return out;
}

}  // namespace

int64_t Siglip2VisionConfig::position_side() const {
  return static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(num_patches))));
}

std::string Siglip2VisionConfig::summary() const {
  return fmt::format("hidden {} intermediate {} layers {} heads {} patch {} positions {} eps {}",
                     hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
                     patch_size, num_patches, layer_norm_eps);
}

Siglip2VisionConfig Siglip2VisionConfig::from_json(const std::string& json_text,
                                                   const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "siglip2", source);
  const ConfigFields f(siglip_vision_fields(j), "siglip2", source);
  Siglip2VisionConfig c;
  f.read("hidden_size", c.hidden_size);
  f.read("intermediate_size", c.intermediate_size);
  f.read("num_hidden_layers", c.num_hidden_layers);
  f.read("num_attention_heads", c.num_attention_heads);
  f.read("patch_size", c.patch_size);
  f.read("num_patches", c.num_patches);
  f.read("layer_norm_eps", c.layer_norm_eps);
  check_siglip_tower_fields(f, "siglip2", source, "SigLIP 2");
  validate(c, source);
  return c;
}

Siglip2VisionConfig Siglip2VisionConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "siglip2"), path.string());
}

Siglip2VisionConfig Siglip2VisionConfig::infer_from_weights(const io::WeightStore& w) {
  const Tensor patch = w.get(kPatchEmbedding);
  ZF_CHECK(patch.ndim() == 2 && patch.size(1) % 3 == 0,
           "[siglip2] {}: '{}' has shape {}, expected [hidden, 3 * patch * patch]",
           w.source_of(kPatchEmbedding), kPatchEmbedding, shape_str(patch.shape()));
  Siglip2VisionConfig c;
  c.hidden_size = patch.size(0);
  c.patch_size = static_cast<int64_t>(std::lround(std::sqrt(patch.size(1) / 3.0)));
  ZF_CHECK(3 * c.patch_size * c.patch_size == patch.size(1),
           "[siglip2] {}: '{}' has {} inputs, not 3 * patch^2", w.source_of(kPatchEmbedding),
           kPatchEmbedding, patch.size(1));
  c.num_patches = w.get(kPositions).size(0);
  c.intermediate_size = w.get("encoder.layers.0.mlp.fc1.weight").size(0);
  int layers = 0;
  while (w.contains(fmt::format("encoder.layers.{}.layer_norm1.weight", layers))) ++layers;
  c.num_hidden_layers = layers;
  ZF_CHECK(c.hidden_size % 72 == 0,
           "[siglip2] {}: hidden size {} is not a multiple of so400m's head size 72; give the "
           "model's config.json",
           w.description(), c.hidden_size);
  c.num_attention_heads = c.hidden_size / 72;
  validate(c, w.description());
  log::info("[siglip2] {}: no config.json, inferred from weight shapes: {}", w.description(),
            c.summary());
  return c;
}

Siglip2ProcessorConfig Siglip2ProcessorConfig::from_json_file(const std::filesystem::path& path) {
  const std::string source = path.string();
  const nlohmann::json j = parse_config_json(read_text_file(path, "siglip2"), "siglip2", source);
  Siglip2ProcessorConfig c;
  try {
    c.patch_size = j.value("patch_size", c.patch_size);
    c.max_num_patches = j.value("max_num_patches", c.max_num_patches);
    for (const char* key : {"image_mean", "image_std"})
      if (j.contains(key) && j[key] != nlohmann::json({0.5, 0.5, 0.5}))
        fail("[siglip2] {}: {} is {}; only SigLIP 2's [0.5, 0.5, 0.5] is implemented", source, key,
             j[key].dump());
    if (j.value("resample", 2) != 2)
      fail("[siglip2] {}: resample is {}; only bilinear (2) is implemented", source,
           j["resample"].dump());
    for (const char* key : {"do_resize", "do_rescale", "do_normalize"})
      if (!j.value(key, true))
        fail("[siglip2] {}: {} is false; only the default processing is implemented", source, key);
  } catch (const nlohmann::json::exception& e) {
    fail("[siglip2] {}: a field has the wrong type: {}", source, e.what());
  }
  ZF_CHECK(c.patch_size >= 1 && c.max_num_patches >= 1,
           "[siglip2] {}: patch_size {} and max_num_patches {} must be positive", source,
           c.patch_size, c.max_num_patches);
  return c;
}

std::pair<int64_t, int64_t> siglip2_patch_grid(int width, int height, int64_t patch_size,
                                               int64_t max_num_patches) {
  // transformers' get_image_size_for_max_num_patches, in Python's double arithmetic.
  const auto side = [&](double scale, int size) {
    const double scaled = size * scale;
    const auto p = static_cast<double>(patch_size);
    return std::max(patch_size, static_cast<int64_t>(std::ceil(scaled / p) * p));
  };
  const auto patches = [&](double scale) {
    return static_cast<double>(side(scale, height) / patch_size) *
           static_cast<double>(side(scale, width) / patch_size);
  };
  constexpr double kEps = 1e-5;
  double lo = kEps / 10, hi = 100.0;
  while (hi - lo >= kEps) {
    const double mid = (lo + hi) / 2;
    (patches(mid) <= static_cast<double>(max_num_patches) ? lo : hi) = mid;
  }
  return {side(lo, height) / patch_size, side(lo, width) / patch_size};
}

Siglip2Patches siglip2_patches(const io::Image& image, const Siglip2ProcessorConfig& processor) {
  const int64_t p = processor.patch_size;
  const auto [rows, cols] =
      siglip2_patch_grid(image.width, image.height, p, processor.max_num_patches);
  const int w = static_cast<int>(cols * p), h = static_cast<int>(rows * p);
  const io::Image resized = io::resize_image(image, w, h, io::ResampleFilter::Bilinear);
  Siglip2Patches out{rows, cols, Tensor::empty({rows * cols, p * p * 3}, DType::F32)};
  float* dst = out.pixels.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t y = 0; y < p; ++y)
        for (int64_t x = 0; x < p; ++x)
          for (int64_t ch = 0; ch < 3; ++ch) {
            const size_t at = (static_cast<size_t>(r * p + y) * w + c * p + x) * 3 + ch;
            // The Pillow backend rescales in double, then normalises in float32.
            const auto v = static_cast<float>(resized.rgb[at] * (1.0 / 255.0));
            *dst++ = (v - 0.5f) / 0.5f;
          }
  return out;
}

Siglip2VisionModel::Siglip2VisionModel(const Siglip2VisionConfig& config,
                                       const io::WeightStore& weights, const Placement& placement)
    : config_(config), placement_(placement) {
  validate(config_, weights.description());
  const std::string extra =
      fmt::format("encoder.layers.{}.layer_norm1.weight", config_.num_hidden_layers);
  ZF_CHECK(!weights.contains(extra),
           "[siglip2] {}: holds '{}', past num_hidden_layers {}: the config is not this model's",
           weights.description(), extra, config_.num_hidden_layers);
  ParameterBinder bind(&weights, "config: " + config_.summary());
  Tensor positions;
  bind_all(bind, config_, patch_w_, patch_b_, positions, layers_, post_ln_w_, post_ln_b_);
  if (placement_.device != Device::CPU) {
    const io::WeightStore placed = place_weights(weights, bind.take_specs(), placement_, "siglip2");
    ParameterBinder bind_placed(&placed, "config: " + config_.summary());
    Tensor unused;
    bind_all(bind_placed, config_, patch_w_, patch_b_, unused, layers_, post_ln_w_, post_ln_b_);
  }
  // Resized on the host for each image's grid (transformers upcasts to float32 for it too).
  const int64_t side = config_.position_side();
  position_grid_ =
      positions.to(Device::CPU).to(DType::F32).contiguous().view({side, side, config_.hidden_size});
}

Tensor Siglip2VisionModel::positions(int64_t rows, int64_t cols) const {
  // torch resizes the width first, then the height.
  const Tensor grid = resize_axis(resize_axis(position_grid_, 1, cols), 0, rows);
  return grid.contiguous().view({rows * cols, config_.hidden_size});
}

Tensor Siglip2VisionModel::encode(const Siglip2Patches& patches) const {
  const int64_t p = config_.patch_size, n = patches.rows * patches.cols;
  ZF_CHECK(n >= 1 && patches.pixels.ndim() == 2 && patches.pixels.size(0) == n &&
               patches.pixels.size(1) == 3 * p * p,
           "[siglip2] encode: patches of shape {} for a {}x{} grid, expected [{}, {}] (patch {})",
           shape_str(patches.pixels.shape()), patches.rows, patches.cols, n, 3 * p * p, p);
  Tensor x = ops::add(ops::linear(placement_.activation(patches.pixels), patch_w_, patch_b_),
                      placement_.activation(positions(patches.rows, patches.cols)));
  const ClipEncoderLayerOptions options{.heads = config_.num_attention_heads,
                                        .eps = config_.layer_norm_eps,
                                        .causal = false,
                                        .activation = ops::GeluKind::kTanh};
  for (const ClipEncoderLayer& layer : layers_) x = clip_encoder_layer(layer, x, options);
  return float32_on(ops::layer_norm(x, post_ln_w_, post_ln_b_, config_.layer_norm_eps), Device::CPU)
      .contiguous();
}

Siglip2VisionModel load_siglip2_vision_model(const std::filesystem::path& path,
                                             const Placement& placement) {
  const io::WeightStore named =
      io::WeightStore::open(path).module_weights(kPatchEmbedding, "SigLIP 2 vision checkpoint");
  const auto json = io::component_config_json(path);
  return Siglip2VisionModel(json ? Siglip2VisionConfig::from_json_file(*json)
                                 : Siglip2VisionConfig::infer_from_weights(named),
                            named, placement);
}

}  // namespace zflow::models
