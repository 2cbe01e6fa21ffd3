#include "models/zimage_controlnet.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/key_map_zimage.h"
#include "models/config_json.h"
#include "models/offload.h"
#include "models/parameters.h"

namespace zflow::models {
namespace {

using Model = ZImageTransformer;
using Block = ZImageControlNet::ControlBlock;

constexpr const char* kEmbedder = "control_all_x_embedder.2-1";

Block bind_control_block(ParameterBinder& bind, const std::string& prefix,
                         const ZImageDiTConfig& main, bool first) {
  Block b{bind_zimage_block(bind, prefix, main, true), {}, {}};
  if (first)
    b.before_proj = bind_zimage_linear(bind, prefix + ".before_proj", main.dim, main.dim, true);
  b.after_proj = bind_zimage_linear(bind, prefix + ".after_proj", main.dim, main.dim, true);
  return b;
}

struct Bound {
  Model::Linear x_embedder;
  std::vector<Block> control_layers, refiner;
};

// diffusers' ZImageControlNetModel state-dict order.
Bound bind_all(ParameterBinder& bind, const ZImageControlNetConfig& c,
               const ZImageDiTConfig& main) {
  Bound b;
  for (size_t n = 0; n < c.control_layers_places.size(); ++n)
    b.control_layers.push_back(
        bind_control_block(bind, fmt::format("control_layers.{}", n), main, n == 0));
  b.x_embedder = bind_zimage_linear(
      bind, kEmbedder, main.patch_size * main.patch_size * c.control_in_dim, main.dim, true);
  for (int j = 0; j < c.n_refiner_layers; ++j) {
    const std::string prefix = fmt::format("control_noise_refiner.{}", j);
    if (c.refiner == ZImageControlRefiner::ControlBlocks)
      b.refiner.push_back(bind_control_block(bind, prefix, main, j == 0));
    else if (c.refiner == ZImageControlRefiner::Plain)
      b.refiner.push_back({bind_zimage_block(bind, prefix, main, true), {}, {}});
  }
  return b;
}

bool strictly_increasing(const std::vector<int>& v) {
  return std::adjacent_find(v.begin(), v.end(), [](int a, int b) { return a >= b; }) == v.end();
}

void validate(const ZImageControlNetConfig& c, const ZImageDiTConfig& main,
              const std::string& source) {
  const auto& places = c.control_layers_places;
  ZF_CHECK(!places.empty() && places.front() == 0 && strictly_increasing(places) &&
               places.back() < main.n_layers,
           "[controlnet] {}: control_layers_places {} must rise from 0 to below the main model's "
           "{} layers",
           source, places, main.n_layers);
  ZF_CHECK(c.control_in_dim >= main.in_channels,
           "[controlnet] {}: control_in_dim {} is below the latent's {} channels", source,
           c.control_in_dim, main.in_channels);
  const auto& refiner = c.control_refiner_layers_places;
  if (c.refiner == ZImageControlRefiner::Plain) return;
  const size_t chain = c.refiner == ZImageControlRefiner::ControlLayers
                           ? places.size()
                           : static_cast<size_t>(c.n_refiner_layers);
  ZF_CHECK(
      strictly_increasing(refiner) && refiner.size() <= chain &&
          (refiner.empty() || (refiner.front() >= 0 && refiner.back() < main.n_refiner_layers)),
      "[controlnet] {}: control_refiner_layers_places {} must rise within the main model's {} "
      "noise-refiner layers, at most one per block of its {}-block refiner chain",
      source, refiner, main.n_refiner_layers, chain);
}

bool absent_or_zero(const io::WeightStore& w, const std::string& name) {
  if (!w.contains(name)) return true;
  const Tensor t = w.get(name).to(DType::F32).contiguous();
  const float* v = t.data<float>();
  return std::all_of(v, v + t.numel(), [](float f) { return f == 0.0f; });
}

}  // namespace

const char* zimage_control_refiner_name(ZImageControlRefiner refiner) {
  switch (refiner) {
    case ZImageControlRefiner::Plain:
      return "plain refiner (1.0)";
    case ZImageControlRefiner::ControlLayers:
      return "control layers as refiner (2.0)";
    case ZImageControlRefiner::ControlBlocks:
      return "control refiner blocks (2.1)";
  }
  return "?";
}

std::string ZImageControlNetConfig::summary() const {
  return fmt::format("control_in_dim {}, {} control layers at {}, {}, refiner hints at {}",
                     control_in_dim, control_layers_places.size(), control_layers_places,
                     zimage_control_refiner_name(refiner), control_refiner_layers_places);
}

ZImageControlNetConfig ZImageControlNetConfig::from_json(const std::string& json_text,
                                                         const std::string& source,
                                                         const ZImageDiTConfig& main) {
  const nlohmann::json j =
      parse_config_json(json_text, "controlnet", source, "ZImageControlNetModel");
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[controlnet] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
  };
  ZImageControlNetConfig c;
  read("control_in_dim", c.control_in_dim);
  read("control_layers_places", c.control_layers_places);
  read("control_refiner_layers_places", c.control_refiner_layers_places);
  read("n_refiner_layers", c.n_refiner_layers);
  std::string mode;
  read("add_control_noise_refiner", mode);
  if (mode == "control_layers")
    c.refiner = ZImageControlRefiner::ControlLayers;
  else if (mode == "control_noise_refiner")
    c.refiner = ZImageControlRefiner::ControlBlocks;
  else
    ZF_CHECK(mode.empty(),
             "[controlnet] {}: add_control_noise_refiner \"{}\", expected null, \"control_layers\" "
             "or \"control_noise_refiner\"",
             source, mode);
  if (c.refiner == ZImageControlRefiner::Plain) c.control_refiner_layers_places.clear();
  // The blocks are the main model's blocks: their sizes must agree.
  ZImageDiTConfig shape = main;
  read("dim", shape.dim);
  read("n_heads", shape.n_heads);
  read("norm_eps", shape.norm_eps);
  read("qk_norm", shape.qk_norm);
  ZF_CHECK(shape.dim == main.dim && shape.n_heads == main.n_heads &&
               shape.norm_eps == main.norm_eps && shape.qk_norm == main.qk_norm,
           "[controlnet] {}: dim {} n_heads {} norm_eps {} qk_norm {} differ from the "
           "transformer's ({})",
           source, shape.dim, shape.n_heads, shape.norm_eps, shape.qk_norm, main.summary());
  validate(c, main, source);
  return c;
}

ZImageControlNetConfig ZImageControlNetConfig::infer_from_weights(const io::WeightStore& w,
                                                                  const ZImageDiTConfig& main) {
  const std::string source = w.description();
  const std::string embedder = std::string(kEmbedder) + ".weight";
  ZF_CHECK(w.contains(embedder),
           "[controlnet] {}: no '{}': not a Z-Image ControlNet (VideoX-Fun / diffusers names)",
           source, embedder);
  const Tensor e = w.get(embedder);
  const int64_t patch_area = main.patch_size * main.patch_size;
  ZF_CHECK(e.ndim() == 2 && e.size(0) == main.dim && e.size(1) % patch_area == 0,
           "[controlnet] {}: '{}' has shape {}, expected [{}, {} x control_in_dim] for the "
           "transformer it runs with",
           source, embedder, shape_str(e.shape()), main.dim, patch_area);
  ZImageControlNetConfig c;
  c.control_in_dim = e.size(1) / patch_area;
  const int n = io::count_zimage_block_run(w, "control_layers");
  ZF_CHECK(n > 0 && n <= main.n_layers,
           "[controlnet] {}: {} control_layers for a transformer of {} layers", source, n,
           main.n_layers);
  const int stride = main.n_layers / n;
  for (int i = 0; i < n; ++i) c.control_layers_places.push_back(i * stride);
  c.n_refiner_layers = io::count_zimage_block_run(w, "control_noise_refiner");
  if (c.n_refiner_layers > 0 && !w.contains("control_noise_refiner.0.after_proj.weight"))
    c.refiner = ZImageControlRefiner::Plain;
  else if (absent_or_zero(w, "control_noise_refiner.0.before_proj.weight"))
    c.refiner = ZImageControlRefiner::ControlLayers;
  else
    c.refiner = ZImageControlRefiner::ControlBlocks;
  if (c.refiner == ZImageControlRefiner::ControlLayers) c.n_refiner_layers = 0;  // untrained
  if (c.refiner != ZImageControlRefiner::Plain) {
    const int chain = c.refiner == ZImageControlRefiner::ControlLayers ? n : c.n_refiner_layers;
    for (int j = 0; j < std::min(chain, main.n_refiner_layers); ++j)
      c.control_refiner_layers_places.push_back(j);
  }
  validate(c, main, source);
  log::info("[controlnet] {}: no config.json, inferred from the weights: {}", source, c.summary());
  return c;
}

ZImageControlNetConfig ZImageControlNetConfig::union_release(ZImageControlRefiner generation,
                                                             const ZImageDiTConfig& main) {
  ZF_CHECK(generation != ZImageControlRefiner::ControlLayers,
           "[controlnet] the 2.0 release is 2.1's layout with an untrained refiner: measure 2.1");
  ZImageControlNetConfig c;
  const bool v1 = generation == ZImageControlRefiner::Plain;
  c.refiner = generation;
  c.control_in_dim = v1 ? main.in_channels : 2 * main.in_channels + 1;
  const int n = std::max(1, std::min(v1 ? 6 : 15, main.n_layers));
  for (int i = 0; i < n; ++i) c.control_layers_places.push_back(i * (main.n_layers / n));
  if (!v1)
    for (int j = 0; j < std::min(c.n_refiner_layers, main.n_refiner_layers); ++j)
      c.control_refiner_layers_places.push_back(j);
  validate(c, main, "union release");
  return c;
}

std::vector<ParameterSpec> zimage_controlnet_parameters(const ZImageControlNetConfig& config,
                                                        const ZImageDiTConfig& main) {
  validate(config, main, "config");
  ParameterBinder bind(nullptr);
  bind_all(bind, config, main);
  return bind.take_specs();
}

double zimage_controlnet_forward_flops(const ZImageControlNetConfig& c, const ZImageDiTConfig& main,
                                       int64_t image_tokens, int64_t caption_tokens) {
  auto padded = [](int64_t n) { return static_cast<double>((n + 31) / 32 * 32); };
  const double dim = static_cast<double>(main.dim), ffn = static_cast<double>(main.ffn_dim());
  auto block = [&](double len) {  // a Z-Image block and one dim x dim projection
    return 2 * len * (5 * dim * dim + 3 * dim * ffn) + 4 * len * len * dim;
  };
  const double img = padded(image_tokens), cap = padded(caption_tokens);
  const double refiner_blocks = c.refiner == ZImageControlRefiner::ControlLayers
                                    ? static_cast<double>(c.control_layers_places.size())
                                    : c.n_refiner_layers;
  return static_cast<double>(c.control_layers_places.size()) * block(img + cap) +
         refiner_blocks * block(img) + 2 * img * 4 * c.control_in_dim * dim;
}

ZImageControlNet::ZImageControlNet(const ZImageControlNetConfig& config,
                                   const ZImageDiTConfig& main, const io::WeightStore& weights,
                                   const Placement& placement)
    : config_(config) {
  validate(config_, main, weights.description());
  Placement resident = placement;
  resident.offload = false;
  std::shared_ptr<OffloadedBlocks> no_offload;
  std::vector<ParameterSpec> used;
  Bound b = bind_placed(weights, resident, config_.summary(), {}, "controlnet", no_offload, used,
                        [&](ParameterBinder& bind) { return bind_all(bind, config_, main); });
  x_embedder_ = b.x_embedder;
  control_layers_ = std::move(b.control_layers);
  refiner_ = std::move(b.refiner);
  // A 2.0 file's untrained control_noise_refiner is expected to go unused.
  const size_t unused = weights.size() - used.size();
  if (unused > 0 && config_.refiner != ZImageControlRefiner::ControlLayers)
    log::warn("[controlnet] {}: {} of its {} tensors are not part of the model ({})",
              weights.description(), unused, weights.size(), config_.summary());
}

ZImageControlNet load_zimage_controlnet(const std::filesystem::path& path,
                                        const ZImageDiTConfig& main, const Placement& placement) {
  const io::WeightStore weights = io::WeightStore::open(path);
  if (const auto json = io::component_config_json(path)) {
    const ZImageControlNetConfig config = ZImageControlNetConfig::from_json(
        read_text_file(*json, "controlnet"), json->string(), main);
    log::info("[controlnet] {}: {}", weights.description(), config.summary());
    return ZImageControlNet(config, main, weights, placement);
  }
  return ZImageControlNet(ZImageControlNetConfig::infer_from_weights(weights, main), main, weights,
                          placement);
}

}  // namespace zflow::models
