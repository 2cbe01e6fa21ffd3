#include "models/flux_controlnet.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/key_map_flux.h"
#include "models/config_json.h"
#include "models/offload.h"

namespace zflow::models {
namespace {

constexpr int64_t kHintChannels = 16;  // ControlNetConditioningEmbedding block_out_channels (16,)*4
constexpr int kHintConvs = 8;          // conv_in, 3 x (same-size, stride-2), conv_out

// The ControlNet's own tensors; the rest is the trunk, a FluxTransformer without final layer.
bool own_tensor(const std::string& name) {
  return name.starts_with("controlnet_") || name.starts_with("input_hint_block.");
}

std::string hint_conv_name(int i) {
  if (i == 0) return "input_hint_block.conv_in";
  if (i == kHintConvs - 1) return "input_hint_block.conv_out";
  return fmt::format("input_hint_block.blocks.{}", i - 1);
}

struct Parts {
  FluxControlNet::Linear x_embedder;
  std::vector<FluxControlNet::Linear> double_out, single_out, hint_convs;
  Tensor mode_embedding;
};

Parts bind_own(ParameterBinder& bind, const FluxControlNetConfig& c) {
  const int64_t d = c.trunk.inner_dim();
  auto linear = [&](const std::string& p, int64_t in, int64_t out) {
    return FluxControlNet::Linear{bind(p + ".weight", {out, in}), bind(p + ".bias", {out})};
  };
  Parts p;
  for (int i = 0; i < c.trunk.num_layers; ++i)
    p.double_out.push_back(linear(fmt::format("controlnet_blocks.{}", i), d, d));
  for (int i = 0; i < c.trunk.num_single_layers; ++i)
    p.single_out.push_back(linear(fmt::format("controlnet_single_blocks.{}", i), d, d));
  if (c.num_mode > 0) p.mode_embedding = bind("controlnet_mode_embedder.weight", {c.num_mode, d});
  if (c.takes_pixels())
    for (int i = 0; i < kHintConvs; ++i) {
      const int64_t in = i == 0 ? 3 : kHintChannels;
      const int64_t out = i == kHintConvs - 1 ? c.conditioning_embedding_channels : kHintChannels;
      const std::string name = hint_conv_name(i);
      p.hint_convs.push_back(
          {bind(name + ".weight", {out, in, 3, 3}), bind(name + ".bias", {out})});
    }
  p.x_embedder = linear("controlnet_x_embedder", c.trunk.in_channels, d);
  return p;
}

void validate(const FluxControlNetConfig& c, const std::string& source) {
  ZF_CHECK(!c.trunk.final_layer, "[controlnet] {}: a ControlNet's trunk has no final layer",
           source);
  ZF_CHECK(c.num_mode >= 0, "[controlnet] {}: num_mode {} is negative", source, c.num_mode);
  ZF_CHECK(c.patch_size >= 1, "[controlnet] {}: patch_size {} must be positive", source,
           c.patch_size);
  if (c.takes_pixels())
    ZF_CHECK(c.conditioning_embedding_channels * c.patch_size * c.patch_size == c.trunk.in_channels,
             "[controlnet] {}: conditioning_embedding_channels {} x patch_size {}^2 must be "
             "in_channels {}",
             source, c.conditioning_embedding_channels, c.patch_size, c.trunk.in_channels);
}

// XLabs' names -> diffusers': their trunk is BFL's (io/key_map_flux.h), pos_embed_input is
// controlnet_x_embedder, and the hint block is one Sequential (convolutions at even indices).
io::WeightStore xlabs_to_diffusers(const io::WeightStore& weights) {
  const io::WeightStore own = weights.renamed([](const std::string& name) {
    return own_tensor(name) || name.starts_with("pos_embed_input.")
               ? std::optional<std::string>(name)
               : std::nullopt;
  });
  io::WeightStore named = io::original_flux_to_diffusers(
      weights.renamed([&](const std::string& name) -> std::optional<std::string> {
        if (own.contains(name)) return std::nullopt;
        return name;
      }));
  for (const std::string& name : own.names()) {
    std::string to = name;
    if (name.starts_with("pos_embed_input."))
      to = "controlnet_x_embedder." + name.substr(name.find('.') + 1);
    else if (name.starts_with("input_hint_block.")) {
      const size_t dot = name.find('.', 17);
      int index = -1;
      try {
        index = std::stoi(name.substr(17, dot - 17));
      } catch (const std::exception&) {
      }
      ZF_CHECK(index >= 0 && index % 2 == 0 && index / 2 < kHintConvs && dot != std::string::npos,
               "[controlnet] {}: '{}' is not one of XLabs' input_hint_block convolutions (0, 2, "
               ".., 14)",
               weights.description(), name);
      to = hint_conv_name(index / 2) + name.substr(dot);
    }
    named.add(to, own.get(name), own.source_of(name));
  }
  return named;
}

}  // namespace

std::string FluxControlNetConfig::summary() const {
  std::string control =
      takes_pixels() ? fmt::format("pixels through the hint block ({} channels, patch {}): XLabs",
                                   conditioning_embedding_channels, patch_size)
                     : std::string("VAE latents");
  return fmt::format("ControlNet of {} double + {} single blocks, {} heads x {}, control {}{}{}",
                     trunk.num_layers, trunk.num_single_layers, trunk.num_attention_heads,
                     trunk.attention_head_dim, control,
                     num_mode > 0 ? fmt::format(", Union of {} modes", num_mode) : "",
                     trunk.guidance_embeds ? ", guidance embedder" : "");
}

FluxControlNetConfig FluxControlNetConfig::from_json(const std::string& json_text,
                                                     const std::string& source) {
  nlohmann::json j = parse_config_json(json_text, "controlnet", source, "FluxControlNetModel");
  FluxControlNetConfig c;
  auto read = [&](const char* key, int64_t& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    ZF_CHECK(j[key].is_number_integer(), "[controlnet] {}: field '{}' must be an integer: {}",
             source, key, j[key].dump());
    field = j[key].get<int64_t>();
  };
  read("num_mode", c.num_mode);
  read("conditioning_embedding_channels", c.conditioning_embedding_channels);
  read("patch_size", c.patch_size);
  // The rest are the transformer's fields; patch_size means the hint block's patches here.
  for (const char* own :
       {"_class_name", "num_mode", "conditioning_embedding_channels", "patch_size"})
    j.erase(own);
  c.trunk = FluxDiTConfig::from_json(j.dump(), source);
  c.trunk.final_layer = false;
  validate(c, source);
  return c;
}

FluxControlNetConfig FluxControlNetConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "controlnet"), path.string());
}

FluxControlNetConfig FluxControlNetConfig::infer_from_weights(const io::WeightStore& w) {
  const FluxShapes s = FluxShapes::of(w, "controlnet");
  FluxControlNetConfig c;
  c.trunk.in_channels = c.trunk.out_channels = s.in_channels;
  c.trunk.num_layers = s.blocks.double_blocks;
  c.trunk.num_single_layers = s.blocks.single_blocks;
  c.trunk.attention_head_dim = s.head_dim;
  c.trunk.num_attention_heads = s.inner_dim / s.head_dim;
  c.trunk.joint_attention_dim = s.joint_attention_dim;
  c.trunk.pooled_projection_dim = s.dim("time_text_embed.text_embedder.linear_1.weight", 1);
  c.trunk.guidance_embeds = s.guidance_embeds;
  c.trunk.final_layer = false;
  if (w.contains("controlnet_mode_embedder.weight"))
    c.num_mode = s.dim("controlnet_mode_embedder.weight", 0);
  if (w.contains("input_hint_block.conv_out.weight")) {
    c.conditioning_embedding_channels = s.dim("input_hint_block.conv_out.weight", 0);
    const int64_t area =
        c.trunk.in_channels / std::max<int64_t>(1, c.conditioning_embedding_channels);
    c.patch_size = std::llround(std::sqrt(static_cast<double>(area)));
  }
  validate(c, w.description());
  log::info("[controlnet] {}: no config.json, inferred from the weights: {}", w.description(),
            c.summary());
  return c;
}

FluxControlNetConfig FluxControlNetConfig::union_pro() {
  FluxControlNetConfig c;
  c.trunk.num_layers = 5;
  c.trunk.num_single_layers = 10;
  c.trunk.final_layer = false;
  c.num_mode = 10;
  return c;
}

FluxControlNetConfig FluxControlNetConfig::union_pro_2() {
  FluxControlNetConfig c;
  c.trunk.num_layers = 6;
  c.trunk.num_single_layers = 0;
  c.trunk.final_layer = false;
  return c;
}

double flux_controlnet_forward_flops(const FluxControlNetConfig& c, int64_t image_tokens,
                                     int64_t text_tokens) {
  const double d = static_cast<double>(c.trunk.inner_dim());
  const double n = static_cast<double>(image_tokens);
  const int64_t l = text_tokens + (c.num_mode > 0 ? 1 : 0);
  // The trunk as the transformer counts it, less its output projection (it has none), plus
  // controlnet_x_embedder and one d x d projection of the image tokens per block.
  const double trunk = flux_dit_forward_flops(c.trunk, image_tokens, l) -
                       2 * n * d * static_cast<double>(c.trunk.out_channels);
  const double blocks = c.trunk.num_layers + c.trunk.num_single_layers;
  return trunk + 2 * n * static_cast<double>(c.trunk.in_channels) * d + blocks * 2 * n * d * d;
}

std::vector<ParameterSpec> flux_controlnet_parameters(const FluxControlNetConfig& config) {
  validate(config, "config");
  std::vector<ParameterSpec> specs = flux_dit_parameters(config.trunk);
  ParameterBinder bind(nullptr);
  bind_own(bind, config);
  for (ParameterSpec& spec : bind.take_specs()) specs.push_back(std::move(spec));
  return specs;
}

FluxControlNet::FluxControlNet(const FluxControlNetConfig& config, const io::WeightStore& weights,
                               const Placement& placement)
    : config_((validate(config, weights.description()), config)),
      placement_([&] {
        Placement resident = placement;
        resident.offload = false;
        return resident;
      }()),
      trunk_(config_.trunk, weights.renamed([](const std::string& name) {
        return own_tensor(name) ? std::nullopt : std::optional<std::string>(name);
      }),
             placement_) {
  std::shared_ptr<OffloadedBlocks> no_offload;
  std::vector<ParameterSpec> used;
  Parts p = bind_placed(weights, placement_, config_.summary(), {}, "controlnet", no_offload, used,
                        [&](ParameterBinder& bind) { return bind_own(bind, config_); });
  x_embedder_ = p.x_embedder;
  double_out_ = std::move(p.double_out);
  single_out_ = std::move(p.single_out);
  mode_embedding_ = p.mode_embedding;
  hint_convs_ = std::move(p.hint_convs);
}

// The control as tokens [B, N, in_channels]: packed latents as they are; pixels through the hint
// block (SiLU after every convolution but the last), patchified (c, ph, pw).
Tensor FluxControlNet::control_tokens(const Tensor& control, int64_t tokens) const {
  const Placement& at = placement_;
  if (!config_.takes_pixels()) {
    ZF_CHECK(control.ndim() == 3 && control.size(1) == tokens &&
                 control.size(2) == config_.trunk.in_channels,
             "[controlnet] control {}, expected packed latents [B, {}, {}]",
             shape_str(control.shape()), tokens, config_.trunk.in_channels);
    return at.activation(control);
  }
  ZF_CHECK(control.ndim() == 4 && control.size(1) == 3,
           "[controlnet] control {}, expected an image [B, 3, H, W]", shape_str(control.shape()));
  Tensor h = at.activation(control);
  for (size_t i = 0; i < hint_convs_.size(); ++i) {
    const int stride = i % 2 == 0 && i > 0 && i + 1 < hint_convs_.size() ? 2 : 1;
    h = ops::conv2d(h, hint_convs_[i].weight, hint_convs_[i].bias, stride, 1);
    if (i + 1 < hint_convs_.size()) h = ops::silu(h);
  }
  const int64_t b = h.size(0), c = h.size(1), p = config_.patch_size;
  ZF_CHECK(h.size(2) % p == 0 && h.size(3) % p == 0 && (h.size(2) / p) * (h.size(3) / p) == tokens,
           "[controlnet] a control image of {} gives {}x{} hint cells, not {} tokens of {}x{}",
           shape_str(control.shape()), h.size(2), h.size(3), tokens, p, p);
  const int64_t rows = h.size(2) / p, cols = h.size(3) / p;
  return h.contiguous()
      .view({b, c, rows, p, cols, p})
      .permute({0, 2, 4, 1, 3, 5})
      .contiguous()
      .view({b, rows * cols, c * p * p});
}

FluxTransformer::ControlSamples FluxControlNet::forward(
    const Tensor& x, std::span<const FluxPosition> img_ids, const Tensor& txt, const Tensor& pooled,
    std::span<const float> t, std::span<const float> guidance, const Tensor& control,
    std::optional<int> mode, float scale) const {
  ZF_CHECK(x.ndim() == 3, "[controlnet] image tokens {}, expected [B, N, C]", shape_str(x.shape()));
  const int64_t batch = x.size(0), tokens = x.size(1);
  ZF_CHECK(control.size(0) == batch, "[controlnet] {} controls for {} samples", control.size(0),
           batch);
  const Tensor addend =
      ops::linear(control_tokens(control, tokens), x_embedder_.weight, x_embedder_.bias);
  Tensor prefix;
  if (config_.num_mode > 0) {
    ZF_CHECK(mode && *mode >= 0 && *mode < config_.num_mode,
             "[controlnet] a Union ControlNet needs a control mode in 0..{}, got {}",
             config_.num_mode - 1, mode ? std::to_string(*mode) : std::string("none"));
    const std::vector<int32_t> ids(static_cast<size_t>(batch), *mode);
    prefix = ops::embedding(mode_embedding_, ids, placement_.activations)
                 .view({batch, 1, config_.trunk.inner_dim()});
  } else {
    ZF_CHECK(!mode, "[controlnet] this ControlNet has no control modes (not a Union one)");
  }
  const std::vector<Tensor> states =
      trunk_.block_outputs(x, img_ids, txt, pooled, t, guidance, addend, prefix);
  FluxTransformer::ControlSamples samples;
  for (size_t i = 0; i < states.size(); ++i) {
    const bool single = i >= double_out_.size();
    const Linear& out = single ? single_out_[i - double_out_.size()] : double_out_[i];
    Tensor s = ops::mul_scalar(ops::linear(states[i], out.weight, out.bias), scale);
    (single ? samples.single_blocks : samples.double_blocks).push_back(std::move(s));
  }
  samples.repeat = config_.takes_pixels();  // XLabs' few blocks feed every block in turn
  return samples;
}

bool is_flux_controlnet(const io::WeightStore& weights) {
  return weights.contains("controlnet_x_embedder.weight") ||
         weights.contains("pos_embed_input.weight");
}

io::WeightStore flux_controlnet_diffusers_names(const io::WeightStore& weights) {
  return weights.contains("pos_embed_input.weight") ? xlabs_to_diffusers(weights) : weights;
}

FluxControlNet load_flux_controlnet(const std::filesystem::path& path, const Placement& placement,
                                    const std::optional<FluxControlNetConfig>& config) {
  const io::WeightStore opened = io::WeightStore::open(path);
  ZF_CHECK(is_flux_controlnet(opened),
           "[controlnet] {}: no 'controlnet_x_embedder.weight' (diffusers) or "
           "'pos_embed_input.weight' (XLabs): not a FLUX.1 ControlNet",
           opened.description());
  const io::WeightStore weights = flux_controlnet_diffusers_names(opened);
  if (config) return FluxControlNet(*config, weights, placement);
  if (const auto json = io::component_config_json(path)) {
    const FluxControlNetConfig config = FluxControlNetConfig::from_json_file(*json);
    log::info("[controlnet] {}: {}", weights.description(), config.summary());
    return FluxControlNet(config, weights, placement);
  }
  return FluxControlNet(FluxControlNetConfig::infer_from_weights(weights), weights, placement);
}

}  // namespace zflow::models
