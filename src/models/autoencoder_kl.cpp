#include "models/autoencoder_kl.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/key_map_autoencoder.h"
#include "models/config_json.h"

namespace zflow::models {
namespace {

using Model = AutoencoderKL;

using Binder = ParameterBinder;

Model::Conv bind_conv(Binder& bind, const std::string& prefix, int64_t cin, int64_t cout,
                      int64_t k) {
  return {bind(prefix + ".weight", {cout, cin, k, k}), bind(prefix + ".bias", {cout})};
}

Model::Norm bind_norm(Binder& bind, const std::string& prefix, int64_t c) {
  return {bind(prefix + ".weight", {c}), bind(prefix + ".bias", {c})};
}

Model::Linear bind_linear(Binder& bind, const std::string& prefix, int64_t cin, int64_t cout) {
  return {bind(prefix + ".weight", {cout, cin}), bind(prefix + ".bias", {cout})};
}

Model::ResnetBlock bind_resnet(Binder& bind, const std::string& p, int64_t cin, int64_t cout) {
  Model::ResnetBlock r;
  r.norm1 = bind_norm(bind, p + ".norm1", cin);
  r.conv1 = bind_conv(bind, p + ".conv1", cin, cout, 3);
  r.norm2 = bind_norm(bind, p + ".norm2", cout);
  r.conv2 = bind_conv(bind, p + ".conv2", cout, cout, 3);
  if (cin != cout) r.conv_shortcut = bind_conv(bind, p + ".conv_shortcut", cin, cout, 1);
  return r;
}

Model::MidBlock bind_mid(Binder& bind, const std::string& p, int64_t c, bool attention) {
  Model::MidBlock m;
  m.resnet0 = bind_resnet(bind, p + ".resnets.0", c, c);
  if (attention) {
    const std::string a = p + ".attentions.0";
    m.attention = Model::MidAttention{
        bind_norm(bind, a + ".group_norm", c), bind_linear(bind, a + ".to_q", c, c),
        bind_linear(bind, a + ".to_k", c, c), bind_linear(bind, a + ".to_v", c, c),
        bind_linear(bind, a + ".to_out.0", c, c)};
  }
  m.resnet1 = bind_resnet(bind, p + ".resnets.1", c, c);
  return m;
}

// diffusers Encoder: conv_in, DownEncoderBlock2D per level (downsample on all but the
// last), UNetMidBlock2D, GroupNorm + SiLU, conv_out to 2 * latent channels (double_z).
Model::Encoder bind_encoder(Binder& bind, const AutoencoderKLConfig& c) {
  Model::Encoder e;
  const auto& ch = c.block_out_channels;
  e.conv_in = bind_conv(bind, "encoder.conv_in", c.in_channels, ch[0], 3);
  int64_t prev = ch[0];
  for (int64_t i = 0; i < c.levels(); ++i) {
    Model::Level level;
    for (int j = 0; j < c.layers_per_block; ++j) {
      level.resnets.push_back(bind_resnet(bind,
                                          fmt::format("encoder.down_blocks.{}.resnets.{}", i, j),
                                          j == 0 ? prev : ch[i], ch[i]));
    }
    if (i + 1 < c.levels())
      level.resample = bind_conv(bind, fmt::format("encoder.down_blocks.{}.downsamplers.0.conv", i),
                                 ch[i], ch[i], 3);
    e.down_blocks.push_back(std::move(level));
    prev = ch[i];
  }
  e.mid_block = bind_mid(bind, "encoder.mid_block", ch.back(), c.mid_block_add_attention);
  e.conv_norm_out = bind_norm(bind, "encoder.conv_norm_out", ch.back());
  e.conv_out = bind_conv(bind, "encoder.conv_out", ch.back(), 2 * c.latent_channels, 3);
  return e;
}

// diffusers Decoder: conv_in, UNetMidBlock2D, UpDecoderBlock2D per level over the
// reversed channels (layers_per_block + 1 resnets, upsample on all but the last),
// GroupNorm + SiLU, conv_out.
Model::Decoder bind_decoder(Binder& bind, const AutoencoderKLConfig& c) {
  Model::Decoder d;
  const std::vector<int64_t> rev(c.block_out_channels.rbegin(), c.block_out_channels.rend());
  d.conv_in = bind_conv(bind, "decoder.conv_in", c.latent_channels, rev[0], 3);
  d.mid_block = bind_mid(bind, "decoder.mid_block", rev[0], c.mid_block_add_attention);
  int64_t prev = rev[0];
  for (int64_t i = 0; i < c.levels(); ++i) {
    Model::Level level;
    for (int j = 0; j <= c.layers_per_block; ++j) {
      level.resnets.push_back(bind_resnet(bind,
                                          fmt::format("decoder.up_blocks.{}.resnets.{}", i, j),
                                          j == 0 ? prev : rev[i], rev[i]));
    }
    if (i + 1 < c.levels())
      level.resample = bind_conv(bind, fmt::format("decoder.up_blocks.{}.upsamplers.0.conv", i),
                                 rev[i], rev[i], 3);
    d.up_blocks.push_back(std::move(level));
    prev = rev[i];
  }
  d.conv_norm_out = bind_norm(bind, "decoder.conv_norm_out", rev.back());
  d.conv_out = bind_conv(bind, "decoder.conv_out", rev.back(), c.out_channels, 3);
  return d;
}

struct Bound {
  Model::Encoder encoder;
  Model::Decoder decoder;
  std::optional<Model::Conv> quant_conv, post_quant_conv;
};

// The whole tree in diffusers' state-dict order.
Bound bind_all(Binder& bind, const AutoencoderKLConfig& c) {
  Bound b;
  b.encoder = bind_encoder(bind, c);
  b.decoder = bind_decoder(bind, c);
  if (c.use_quant_conv)
    b.quant_conv = bind_conv(bind, "quant_conv", 2 * c.latent_channels, 2 * c.latent_channels, 1);
  if (c.use_post_quant_conv)
    b.post_quant_conv = bind_conv(bind, "post_quant_conv", c.latent_channels, c.latent_channels, 1);
  return b;
}

void validate(const AutoencoderKLConfig& c, const std::string& source) {
  ZF_CHECK(!c.block_out_channels.empty(), "[vae] {}: block_out_channels is empty", source);
  ZF_CHECK(c.layers_per_block >= 1, "[vae] {}: layers_per_block {} < 1", source,
           c.layers_per_block);
  ZF_CHECK(c.in_channels >= 1 && c.out_channels >= 1 && c.latent_channels >= 1,
           "[vae] {}: channel counts must be positive", source);
  for (int64_t ch : c.block_out_channels)
    ZF_CHECK(ch > 0 && c.norm_num_groups > 0 && ch % c.norm_num_groups == 0,
             "[vae] {}: block channels {} do not split into norm_num_groups {}", source, ch,
             c.norm_num_groups);
  ZF_CHECK(c.scaling_factor != 0.0f, "[vae] {}: scaling_factor is 0", source);
}

Tensor conv(const Model::Conv& c, const Tensor& x, int stride, ops::Padding2d pad) {
  return ops::conv2d(x, c.weight, c.bias, stride, pad);
}

}  // namespace

std::string AutoencoderKLConfig::summary() const {
  return fmt::format(
      "in {} out {} latent {} channels {} layers_per_block {} groups {} mid attention {} "
      "quant convs {}/{} scale {} shift {}",
      in_channels, out_channels, latent_channels, block_out_channels, layers_per_block,
      norm_num_groups, mid_block_add_attention, use_quant_conv, use_post_quant_conv, scaling_factor,
      shift_factor);
}

AutoencoderKLConfig AutoencoderKLConfig::from_json(const std::string& json_text,
                                                   const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "vae", source);
  AutoencoderKLConfig c;
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[vae] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
  };
  std::string class_name = "AutoencoderKL";
  read("_class_name", class_name);
  if (class_name == "AutoencoderKLFlux2") {
    // Its own defaults (diffusers AutoencoderKLFlux2): 32 channels, quant convs, and no latent
    // scale or shift: FLUX.2's pipelines normalise with BatchNorm statistics instead
    // (models/flux2_autoencoder.h).
    c.latent_channels = 32;
    c.use_quant_conv = c.use_post_quant_conv = true;
    c.scaling_factor = 1.0f;
    c.shift_factor = 0.0f;
    ZF_CHECK(!j.contains("decoder_block_out_channels") ||
                 j["decoder_block_out_channels"].is_null() ||
                 j["decoder_block_out_channels"] == j.value("block_out_channels", nlohmann::json()),
             "[vae] {}: decoder_block_out_channels {} differ from the encoder's: a decoder of "
             "another width is not supported",
             source, j["decoder_block_out_channels"].dump());
  } else if (class_name != "AutoencoderKL") {
    fail("[vae] {}: _class_name is \"{}\", expected \"AutoencoderKL\" or \"AutoencoderKLFlux2\"",
         source, class_name);
  }
  read("in_channels", c.in_channels);
  read("out_channels", c.out_channels);
  read("latent_channels", c.latent_channels);
  read("block_out_channels", c.block_out_channels);
  read("layers_per_block", c.layers_per_block);
  read("norm_num_groups", c.norm_num_groups);
  read("scaling_factor", c.scaling_factor);
  if (j.contains("shift_factor") && j["shift_factor"].is_null()) c.shift_factor = 0.0f;
  read("shift_factor", c.shift_factor);
  read("mid_block_add_attention", c.mid_block_add_attention);
  read("use_quant_conv", c.use_quant_conv);
  read("use_post_quant_conv", c.use_post_quant_conv);
  std::string act = "silu";
  read("act_fn", act);
  ZF_CHECK(act == "silu", "[vae] {}: act_fn '{}' is not supported (only silu)", source, act);
  std::vector<std::string> types;
  read("down_block_types", types);
  for (const auto& t : types)
    ZF_CHECK(t == "DownEncoderBlock2D", "[vae] {}: down block type '{}' is not supported", source,
             t);
  types.clear();
  read("up_block_types", types);
  for (const auto& t : types)
    ZF_CHECK(t == "UpDecoderBlock2D", "[vae] {}: up block type '{}' is not supported", source, t);
  validate(c, source);
  return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "vae"), path.string());
}

AutoencoderKLConfig AutoencoderKLConfig::infer_from_weights(const io::WeightStore& w) {
  AutoencoderKLConfig c;
  const std::string source = w.description();
  auto dim = [&](const std::string& name, int d) {
    const Tensor t = w.get(name);
    ZF_CHECK(t.ndim() > d, "[vae] {}: '{}' has shape {}, too few dims", source, name,
             shape_str(t.shape()));
    return t.size(d);
  };
  c.block_out_channels.clear();
  while (w.contains(
      fmt::format("encoder.down_blocks.{}.resnets.0.conv1.weight", c.block_out_channels.size())))
    c.block_out_channels.push_back(dim(
        fmt::format("encoder.down_blocks.{}.resnets.0.conv1.weight", c.block_out_channels.size()),
        0));
  ZF_CHECK(!c.block_out_channels.empty(), "[vae] {}: no encoder.down_blocks.0.resnets.0 weights",
           source);
  c.layers_per_block = 0;
  while (
      w.contains(fmt::format("encoder.down_blocks.0.resnets.{}.conv1.weight", c.layers_per_block)))
    ++c.layers_per_block;
  c.in_channels = dim("encoder.conv_in.weight", 1);
  c.out_channels = dim("decoder.conv_out.weight", 0);
  c.latent_channels = dim("decoder.conv_in.weight", 1);
  c.mid_block_add_attention = w.contains("decoder.mid_block.attentions.0.to_q.weight");
  c.use_quant_conv = w.contains("quant_conv.weight");
  c.use_post_quant_conv = w.contains("post_quant_conv.weight");
  for (int64_t ch : c.block_out_channels)
    ZF_CHECK(ch % c.norm_num_groups == 0,
             "[vae] {}: block channels {} do not split into norm_num_groups {} (the FLUX.1 value, "
             "assumed because the weights do not record it); give the model's config.json",
             source, ch, c.norm_num_groups);
  validate(c, source);
  log::info("[vae] {}: no config.json, inferred from weight shapes: {}", source, c.summary());
  return c;
}

std::vector<ParameterSpec> autoencoder_kl_parameters(const AutoencoderKLConfig& config) {
  validate(config, "config");
  Binder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

io::WeightStore autoencoder_kl_random_weights(const AutoencoderKLConfig& config, DType dtype,
                                              uint64_t seed, Device device) {
  return random_weights(autoencoder_kl_parameters(config), dtype, seed, device);
}

double autoencoder_kl_decoder_flops(const AutoencoderKLConfig& c, int64_t height, int64_t width) {
  const auto& ch = c.block_out_channels;
  const int levels = static_cast<int>(ch.size());
  auto conv = [](double cin, double cout, double k, double px) {
    return 2 * cin * cout * k * k * px;
  };
  auto resnet = [&](double cin, double cout, double px) {
    return conv(cin, cout, 3, px) + conv(cout, cout, 3, px) +
           (cin != cout ? conv(cin, cout, 1, px) : 0);
  };
  const double top = static_cast<double>(ch.back());
  const double shrink = static_cast<double>(int64_t{1} << (levels - 1));
  double px = static_cast<double>(height) * static_cast<double>(width) / (shrink * shrink);
  double f = conv(static_cast<double>(c.latent_channels), top, 3, px);
  // Mid block: two resnets, q/k/v/out projections and the two attention matmuls.
  f += 2 * resnet(top, top, px) + 4 * conv(top, top, 1, px) + 4 * px * px * top;
  double prev = top;
  for (int i = 0; i < levels; ++i) {
    const double out = static_cast<double>(ch[levels - 1 - i]);
    for (int j = 0; j <= c.layers_per_block; ++j) f += resnet(j == 0 ? prev : out, out, px);
    if (i + 1 < levels) {
      px *= 4;
      f += conv(out, out, 3, px);
    }
    prev = out;
  }
  return f + conv(prev, static_cast<double>(c.out_channels), 3, px);
}

AutoencoderKL::AutoencoderKL(const AutoencoderKLConfig& config, const io::WeightStore& weights,
                             const Placement& placement)
    : config_(config), placement_(placement) {
  validate(config_, weights.description());
  Binder bind(&weights);
  Bound b = bind_all(bind, config_);
  const std::vector<ParameterSpec> bound = bind.take_specs();
  if (placement_.device != Device::CPU) {
    const io::WeightStore placed = place_weights(weights, bound, placement_, "vae");
    Binder bind_placed(&placed);
    b = bind_all(bind_placed, config_);
  }
  encoder_ = std::move(b.encoder);
  decoder_ = std::move(b.decoder);
  quant_conv_ = std::move(b.quant_conv);
  post_quant_conv_ = std::move(b.post_quant_conv);
  const size_t used = bound.size();
  if (used != weights.size())
    log::warn("[vae] {}: {} of its {} tensors are not part of the model ({})",
              weights.description(), weights.size() - used, weights.size(), config_.summary());
}

// diffusers ResnetBlock2D without time embedding:
//   h = conv2(silu(norm2(conv1(silu(norm1(x)))))),  out = shortcut(x) + h
Tensor AutoencoderKL::resnet(const ResnetBlock& r, const Tensor& x) const {
  const int g = config_.norm_num_groups;
  const float eps = config_.norm_eps;
  Tensor h = ops::group_norm_silu(x, g, r.norm1.weight, r.norm1.bias, eps);
  h = conv(r.conv1, h, 1, ops::Padding2d::uniform(1));
  h = ops::group_norm_silu(h, g, r.norm2.weight, r.norm2.bias, eps);
  h = conv(r.conv2, h, 1, ops::Padding2d::uniform(1));
  const Tensor shortcut = r.conv_shortcut ? conv(*r.conv_shortcut, x, 1, {}) : x;
  return ops::add(shortcut, h);
}

// diffusers Attention (one head of all C channels, group_norm, residual connection):
// the pixels are the tokens.
Tensor AutoencoderKL::mid_attention(const MidAttention& a, const Tensor& x) const {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3), l = h * w;
  const Tensor normed = ops::group_norm(x, config_.norm_num_groups, a.group_norm.weight,
                                        a.group_norm.bias, config_.norm_eps);
  const Tensor tokens = normed.view({b, c, l}).permute({0, 2, 1}).contiguous();  // [B, L, C]
  auto head = [&](const Linear& proj) {
    return ops::linear(tokens, proj.weight, proj.bias).view({b, 1, l, c});
  };
  const Tensor attended = ops::attention(head(a.to_q), head(a.to_k), head(a.to_v),
                                         1.0f / std::sqrt(static_cast<float>(c)));
  const Tensor out =
      ops::linear(attended.contiguous().view({b, l, c}), a.to_out.weight, a.to_out.bias);
  return ops::add(out.permute({0, 2, 1}).contiguous().view({b, c, h, w}), x);
}

Tensor AutoencoderKL::mid_block(const MidBlock& m, const Tensor& x) const {
  Tensor h = resnet(m.resnet0, x);
  if (m.attention) h = mid_attention(*m.attention, h);
  return resnet(m.resnet1, h);
}

AutoencoderKL::Posterior AutoencoderKL::encode(const Tensor& image) const {
  return posterior(encode_moments(image), config_.latent_channels);
}

AutoencoderKL::Posterior AutoencoderKL::posterior(const Tensor& moments, int64_t latent_channels) {
  const int64_t lat = latent_channels;
  ZF_CHECK(moments.ndim() == 4 && moments.size(1) == 2 * lat,
           "[vae] moments {} are not [B, {}, h, w]", shape_str(moments.shape()), 2 * lat);
  return {moments.slice(1, 0, lat).contiguous(),
          ops::clamp(moments.slice(1, lat, 2 * lat), -30.0f, 20.0f)};
}

Tensor AutoencoderKL::encode_moments(const Tensor& image) const {
  ZF_CHECK(image.ndim() == 4 && image.size(1) == config_.in_channels,
           "[vae] encode: image has shape {}, expected [B, {}, H, W]", shape_str(image.shape()),
           config_.in_channels);
  const int64_t factor = int64_t{1} << (config_.levels() - 1);
  ZF_CHECK(image.size(2) % factor == 0 && image.size(3) % factor == 0,
           "[vae] encode: image size {}x{} is not a multiple of {}", image.size(3), image.size(2),
           factor);
  Tensor h = conv(encoder_.conv_in, placement_.activation(image), 1, ops::Padding2d::uniform(1));
  for (const Level& level : encoder_.down_blocks) {
    for (const ResnetBlock& r : level.resnets) h = resnet(r, h);
    // diffusers Downsample2D with padding 0: pad right and bottom by one, 3x3 stride 2.
    if (level.resample) h = conv(*level.resample, h, 2, {0, 1, 0, 1});
  }
  h = mid_block(encoder_.mid_block, h);
  h = ops::group_norm_silu(h, config_.norm_num_groups, encoder_.conv_norm_out.weight,
                           encoder_.conv_norm_out.bias, config_.norm_eps);
  h = conv(encoder_.conv_out, h, 1, ops::Padding2d::uniform(1));
  if (quant_conv_) h = conv(*quant_conv_, h, 1, {});
  return float32_on(h, image.device());
}

Tensor AutoencoderKL::decode_raw(const Tensor& latent) const {
  ZF_CHECK(latent.ndim() == 4 && latent.size(1) == config_.latent_channels,
           "[vae] decode: latent has shape {}, expected [B, {}, h, w]", shape_str(latent.shape()),
           config_.latent_channels);
  Tensor h = placement_.activation(latent);
  if (post_quant_conv_) h = conv(*post_quant_conv_, h, 1, {});
  h = conv(decoder_.conv_in, h, 1, ops::Padding2d::uniform(1));
  h = mid_block(decoder_.mid_block, h);
  for (const Level& level : decoder_.up_blocks) {
    for (const ResnetBlock& r : level.resnets) h = resnet(r, h);
    // diffusers Upsample2D: nearest x2, then 3x3 conv.
    if (level.resample)
      h = conv(*level.resample, ops::upsample_nearest2x(h), 1, ops::Padding2d::uniform(1));
  }
  h = ops::group_norm_silu(h, config_.norm_num_groups, decoder_.conv_norm_out.weight,
                           decoder_.conv_norm_out.bias, config_.norm_eps);
  return float32_on(conv(decoder_.conv_out, h, 1, ops::Padding2d::uniform(1)), latent.device());
}

Tensor AutoencoderKL::decode(const Tensor& z) const {
  return decode_raw(denormalize_latent(z));
}

Tensor AutoencoderKL::normalize_latent(const Tensor& latent) const {
  return ops::mul_scalar(ops::add_scalar(latent, -config_.shift_factor), config_.scaling_factor);
}

Tensor AutoencoderKL::denormalize_latent(const Tensor& z) const {
  return ops::add_scalar(ops::mul_scalar(z, 1.0f / config_.scaling_factor), config_.shift_factor);
}

Tensor AutoencoderKL::sample_with_noise(const Posterior& p, const Tensor& eps) {
  ZF_CHECK(eps.shape() == p.mean.shape(), "[vae] sample: noise has shape {}, expected {}",
           shape_str(eps.shape()), shape_str(p.mean.shape()));
  return ops::add(p.mean, ops::mul(ops::exp(ops::mul_scalar(p.logvar, 0.5f)), eps));
}

Tensor AutoencoderKL::sample(const Posterior& p, Generator& generator) {
  return sample_with_noise(p, generator.randn(p.mean.shape()));
}

AutoencoderKL load_autoencoder_kl(const io::WeightStore& weights,
                                  const std::optional<AutoencoderKLConfig>& config,
                                  const Placement& placement) {
  const io::WeightStore stripped = io::strip_autoencoder_prefix(weights);
  io::WeightStore named = stripped;
  if (io::detect_autoencoder_layout(stripped) == io::AutoencoderLayout::Original) {
    const io::AutoencoderCounts counts =
        config ? io::AutoencoderCounts{static_cast<int>(config->levels()), config->layers_per_block}
               : io::count_original_autoencoder_layers(stripped);
    named = io::original_autoencoder_to_diffusers(stripped, counts);
  }
  const AutoencoderKLConfig c = config ? *config : AutoencoderKLConfig::infer_from_weights(named);
  return AutoencoderKL(c, named, placement);
}

AutoencoderKL load_autoencoder_kl(const std::filesystem::path& path,
                                  const std::optional<AutoencoderKLConfig>& config,
                                  const Placement& placement) {
  const io::WeightStore weights = io::WeightStore::open(path);
  if (config) return load_autoencoder_kl(weights, config, placement);
  if (const auto json = io::component_config_json(path))
    return load_autoencoder_kl(weights, AutoencoderKLConfig::from_json_file(*json), placement);
  return load_autoencoder_kl(weights, std::nullopt, placement);
}

}  // namespace zflow::models
