#include "models/srvgg_compact.h"

#include <fmt/format.h>

#include <algorithm>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"

namespace zflow::models {
namespace {

std::vector<SrvggCompact::Layer> bind_all(ParameterBinder& bind, const CompactConfig& c) {
  std::vector<SrvggCompact::Layer> layers;
  const int total = c.convs + 2;
  for (int k = 0; k < total; ++k) {
    const bool first = k == 0, last = k == total - 1;
    const int64_t cin = first ? c.in_channels : c.features;
    const int64_t cout = last ? c.out_channels * c.scale * c.scale : c.features;
    SrvggCompact::Layer layer;
    layer.weight = bind(fmt::format("body.{}.weight", 2 * k), {cout, cin, 3, 3});
    layer.bias = bind(fmt::format("body.{}.bias", 2 * k), {cout});
    if (!last) layer.slope = bind(fmt::format("body.{}.weight", 2 * k + 1), {cout});
    layers.push_back(std::move(layer));
  }
  return layers;
}

// pixel_shuffle(y, s) + F.interpolate(x, scale_factor=s, mode="nearest") on the CPU.
Tensor shuffled_plus_nearest(const Tensor& y, const Tensor& x, int s) {
  Tensor out = pixel_shuffle(y, s);
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const float* base = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < b * c; ++n)
    for (int64_t r = 0; r < h * s; ++r)
      for (int64_t q = 0; q < w * s; ++q) *dst++ += base[(n * h + r / s) * w + q / s];
  return out;
}

}  // namespace

CompactConfig CompactConfig::infer_from_weights(const io::WeightStore& weights) {
  const std::string& source = weights.description();
  // The highest body index any tensor has (spandrel's get_seq_len); gaps are binding errors.
  int highest = -1;
  for (const std::string& name : weights.names()) {
    if (!name.starts_with("body.")) continue;
    const size_t dot = name.find('.', 5);
    const std::string index = name.substr(5, dot == std::string::npos ? dot : dot - 5);
    if (!index.empty() && index.size() <= 6 &&
        index.find_first_not_of("0123456789") == std::string::npos)
      highest = std::max(highest, std::stoi(index));
  }
  ZF_CHECK(
      highest >= 2 && highest % 2 == 0 && weights.contains(fmt::format("body.{}.weight", highest)),
      "[compact] {}: body.0 .. body.{} do not form a Compact network (convs at even indices "
      "with PReLUs between them, a conv last)",
      source, highest);
  const Tensor first = weights.get("body.0.weight");
  const Tensor last = weights.get(fmt::format("body.{}.weight", highest));
  ZF_CHECK(first.ndim() == 4 && last.ndim() == 4 && first.size(0) > 0 && first.size(1) > 0,
           "[compact] {}: body.0 and body.{} must be conv kernels, got {} and {}", source, highest,
           shape_str(first.shape()), shape_str(last.shape()));
  CompactConfig c;
  c.in_channels = first.size(1);
  c.features = first.size(0);
  c.convs = (highest - 2) / 2;
  const auto split = split_shuffled_channels(last.size(0), c.in_channels);
  ZF_CHECK(split.has_value(),
           "[compact] {}: the last conv's {} outputs are no output channel count times a square "
           "scale up to 8",
           source, last.size(0));
  c.out_channels = split->channels;
  c.scale = split->scale;
  // The network adds its input to its output, so both have one channel count.
  ZF_CHECK(c.out_channels == c.in_channels,
           "[compact] {}: {} input channels cannot be added to {} output channels", source,
           c.in_channels, c.out_channels);
  log::info("[compact] {}: {}", source, c.summary());
  return c;
}

std::string CompactConfig::summary() const {
  return fmt::format("{}x Compact, {} conv{}, {} features", scale, convs, convs == 1 ? "" : "s",
                     features);
}

std::vector<ParameterSpec> compact_parameters(const CompactConfig& config) {
  ParameterBinder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

SrvggCompact::SrvggCompact(const CompactConfig& config, const io::WeightStore& weights,
                           const Placement& placement)
    : config_(config), placement_(placement) {
  size_t bound = 0;
  layers_ = bind_placed(
      weights, placement_, "compact", config_.summary(),
      [&](ParameterBinder& bind) { return bind_all(bind, config_); }, &bound);
  warn_unread_tensors(weights, bound, "compact", config_.summary());
}

double SrvggCompact::flops(int64_t height, int64_t width) const {
  double flops = 0.0;
  for (const ParameterSpec& p : compact_parameters(config_))
    if (p.shape.size() == 4)
      flops += 2.0 * height * width * static_cast<double>(shape_numel(p.shape));
  return flops;
}

Tensor SrvggCompact::upscale(const Tensor& image) const {
  ZF_CHECK(image.ndim() == 4 && image.size(1) == config_.in_channels,
           "[compact] expected a picture [B, {}, H, W], got {}", config_.in_channels,
           shape_str(image.shape()));
  Tensor y = placement_.activation(image);
  for (const Layer& layer : layers_) {
    y = ops::conv2d(y, layer.weight, layer.bias, 1, 1);
    if (layer.slope.defined()) y = ops::prelu(y, layer.slope);
  }
  return shuffled_plus_nearest(float32_on(y, Device::CPU), image.contiguous(), config_.scale);
}

}  // namespace zflow::models
