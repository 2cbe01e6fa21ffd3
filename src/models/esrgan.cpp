#include "models/esrgan.h"

#include <fmt/format.h>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "io/key_map_esrgan.h"

namespace zflow::models {
namespace {

constexpr float kSlope = 0.2f;     // LeakyReLU's negative slope
constexpr float kResidual = 0.2f;  // how much of a dense block's output joins its input

using Model = Esrgan;

Model::Conv bind_conv(ParameterBinder& bind, const std::string& prefix, int64_t cin, int64_t cout,
                      int64_t k = 3, bool bias = true) {
  Model::Conv c;
  c.weight = bind(prefix + ".weight", {cout, cin, k, k});
  if (bias) c.bias = bind(prefix + ".bias", {cout});
  return c;
}

struct Bound {
  Model::Conv conv_first, conv_body, conv_hr, conv_last;
  std::vector<Model::Rrdb> body;
  std::vector<Model::Conv> conv_up;
};

Bound bind_all(ParameterBinder& bind, const EsrganConfig& c) {
  const int64_t f = c.features, g = c.growth;
  const int64_t network_in = c.in_channels * c.unshuffle * c.unshuffle;
  Bound b;
  b.conv_first = bind_conv(bind, "conv_first", network_in, f);
  for (int i = 0; i < c.blocks; ++i) {
    Model::Rrdb rrdb;
    for (int r = 0; r < 3; ++r) {
      const std::string p = fmt::format("body.{}.rdb{}", i, r + 1);
      Model::DenseBlock& d = rrdb.rdb[r];
      for (int k = 0; k < 5; ++k)
        d.conv[k] = bind_conv(bind, fmt::format("{}.conv{}", p, k + 1), f + k * g, k < 4 ? g : f);
      if (c.plus) d.conv1x1 = bind_conv(bind, p + ".conv1x1", f, g, 1, false);
    }
    b.body.push_back(std::move(rrdb));
  }
  b.conv_body = bind_conv(bind, "conv_body", f, f);
  for (int k = 0; k < c.upsamplings; ++k)
    b.conv_up.push_back(bind_conv(bind, fmt::format("conv_up{}", k + 1), f, f));
  b.conv_hr = bind_conv(bind, "conv_hr", f, f);
  b.conv_last = bind_conv(bind, "conv_last", f, c.out_channels);
  return b;
}

int count_indexed(const io::WeightStore& weights, const std::string& format, int first) {
  int n = 0;
  while (weights.contains(fmt::format(fmt::runtime(format), n + first))) ++n;
  return n;
}

Tensor conv(const Model::Conv& c, const Tensor& x) {
  const int k = static_cast<int>(c.weight.size(2));
  return ops::conv2d(x, c.weight, c.bias, 1, k / 2);
}

// Real-ESRGAN's input for unshuffle factor f: the picture reflect-padded on the right and bottom
// to multiples of f (torch's F.pad mode="reflect"), then torch.pixel_unshuffle: channel
// c * f² + i * f + j of cell (y, x) is pixel (y * f + i, x * f + j) of channel c.
Tensor unshuffled(const Tensor& image, int f) {
  const int64_t b = image.size(0), c = image.size(1), h = image.size(2), w = image.size(3);
  const int64_t ph = (f - h % f) % f, pw = (f - w % f) % f;
  ZF_CHECK(h > ph && w > pw,
           "[esrgan] a {}x{} picture is too small to reflect-pad to a multiple of {}", w, h, f);
  const int64_t hh = (h + ph) / f, ww = (w + pw) / f;
  const auto reflect = [](int64_t i, int64_t n) { return i < n ? i : 2 * (n - 1) - i; };
  const Tensor in = image.contiguous();
  const float* src = in.data<float>();
  Tensor out = Tensor::empty({b, c * f * f, hh, ww}, DType::F32);
  float* dst = out.data<float>();
  for (int64_t n = 0; n < b * c; ++n)
    for (int i = 0; i < f; ++i)
      for (int j = 0; j < f; ++j)
        for (int64_t y = 0; y < hh; ++y)
          for (int64_t x = 0; x < ww; ++x)
            *dst++ = src[(n * h + reflect(y * f + i, h)) * w + reflect(x * f + j, w)];
  return out;
}

}  // namespace

EsrganConfig EsrganConfig::infer_from_weights(const io::WeightStore& weights) {
  const std::string& source = weights.description();
  EsrganConfig c;
  const Tensor first = weights.get("conv_first.weight");
  const Tensor dense = weights.get("body.0.rdb1.conv1.weight");
  const Tensor last = weights.get("conv_last.weight");
  ZF_CHECK(first.ndim() == 4 && dense.ndim() == 4 && last.ndim() == 4,
           "[esrgan] {}: conv_first, body.0.rdb1.conv1 and conv_last must be 4-d conv kernels",
           source);
  ZF_CHECK(first.size(0) > 0 && first.size(1) > 0 && dense.size(0) > 0 && last.size(0) > 0,
           "[esrgan] {}: conv_first, body.0.rdb1.conv1 and conv_last must have channels", source);
  c.features = first.size(0);
  c.growth = dense.size(0);
  c.out_channels = last.size(0);
  c.blocks = count_indexed(weights, "body.{}.rdb1.conv1.weight", 0);
  c.upsamplings = count_indexed(weights, "conv_up{}.weight", 1);
  c.plus = weights.contains("body.0.rdb1.conv1x1.weight");
  const int64_t network_in = first.size(1);
  for (int f : {4, 2})
    if (network_in == c.out_channels * f * f) c.unshuffle = f;
  c.in_channels = network_in / (c.unshuffle * c.unshuffle);
  ZF_CHECK(c.upsamplings <= 3 && (1 << c.upsamplings) >= c.unshuffle,
           "[esrgan] {}: {} upsampling convs and a pixel unshuffle by {} make no supported scale",
           source, c.upsamplings, c.unshuffle);
  log::info("[esrgan] {}: {}", source, c.summary());
  return c;
}

std::string EsrganConfig::summary() const {
  return fmt::format("{}x ESRGAN{}{}, {} RRDB block{}, {} features, growth {}", scale(),
                     unshuffle > 1 ? fmt::format(" (unshuffle {})", unshuffle) : "",
                     plus ? ", ESRGAN+" : "", blocks, blocks == 1 ? "" : "s", features, growth);
}

std::vector<ParameterSpec> esrgan_parameters(const EsrganConfig& config) {
  ParameterBinder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

double esrgan_flops(const EsrganConfig& config, int64_t height, int64_t width) {
  double flops = 0.0;
  const double cells = static_cast<double>(height) * width / (config.unshuffle * config.unshuffle);
  for (const ParameterSpec& p : esrgan_parameters(config)) {
    if (p.shape.size() != 4) continue;
    // Convs after the k-th upsampling run on 4^k times the cells; conv_hr and conv_last on the
    // final grid.
    double grid = cells;
    if (p.name.starts_with("conv_up")) grid *= std::pow(4.0, std::stoi(p.name.substr(7)));
    if (p.name.starts_with("conv_hr") || p.name.starts_with("conv_last"))
      grid *= std::pow(4.0, config.upsamplings);
    flops += 2.0 * grid * static_cast<double>(shape_numel(p.shape));
  }
  return flops;
}

Esrgan::Esrgan(const EsrganConfig& config, const io::WeightStore& weights,
               const Placement& placement)
    : config_(config), placement_(placement) {
  size_t bound = 0;
  Bound b = bind_placed(
      weights, placement_, "esrgan", config_.summary(),
      [&](ParameterBinder& bind) { return bind_all(bind, config_); }, &bound);
  warn_unread_tensors(weights, bound, "esrgan", config_.summary());
  conv_first_ = std::move(b.conv_first);
  conv_body_ = std::move(b.conv_body);
  conv_hr_ = std::move(b.conv_hr);
  conv_last_ = std::move(b.conv_last);
  body_ = std::move(b.body);
  conv_up_ = std::move(b.conv_up);
}

Tensor Esrgan::dense_block(const DenseBlock& block, const Tensor& x) const {
  std::vector<Tensor> features = {x};
  Tensor x2;
  for (int k = 0; k < 4; ++k) {
    Tensor xk = ops::leaky_relu(conv(block.conv[k], ops::concat(features, 1)), kSlope);
    if (block.conv1x1 && k == 1) xk = ops::add(xk, conv(*block.conv1x1, x));
    if (block.conv1x1 && k == 3) xk = ops::add(xk, x2);
    if (k == 1) x2 = xk;
    features.push_back(xk);
  }
  return ops::add(x, ops::mul_scalar(conv(block.conv[4], ops::concat(features, 1)), kResidual));
}

Tensor Esrgan::upscale(const Tensor& image) const {
  ZF_CHECK(image.ndim() == 4 && image.size(1) == config_.in_channels,
           "[esrgan] expected a picture [B, {}, H, W], got {}", config_.in_channels,
           shape_str(image.shape()));
  const int64_t h = image.size(2), w = image.size(3);
  const Tensor input =
      config_.unshuffle > 1 ? unshuffled(float32_on(image, Device::CPU), config_.unshuffle) : image;
  const Tensor fea = conv(conv_first_, placement_.activation(input));
  Tensor trunk = fea;
  for (const Rrdb& rrdb : body_) {
    Tensor y = trunk;
    for (const DenseBlock& block : rrdb.rdb) y = dense_block(block, y);
    trunk = ops::add(trunk, ops::mul_scalar(y, kResidual));
  }
  Tensor x = ops::add(fea, conv(conv_body_, trunk));
  for (const Conv& up : conv_up_) x = ops::leaky_relu(conv(up, ops::upsample_nearest2x(x)), kSlope);
  x = conv(conv_last_, ops::leaky_relu(conv(conv_hr_, x), kSlope));
  x = float32_on(x, Device::CPU);
  const int64_t s = config_.scale();
  if (x.size(2) == h * s && x.size(3) == w * s) return x;
  return x.slice(2, 0, h * s).slice(3, 0, w * s).contiguous();
}

Esrgan load_esrgan(const std::filesystem::path& path, const Placement& placement) {
  const io::WeightStore weights = io::esrgan_to_basicsr(io::WeightStore::open(path));
  return Esrgan(EsrganConfig::infer_from_weights(weights), weights, placement);
}

}  // namespace zflow::models
