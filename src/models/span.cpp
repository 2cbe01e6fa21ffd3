#include "models/span.h"

#include <fmt/format.h>

#include <array>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"

namespace zflow::models {
namespace {

constexpr int kBlocks = 6;
constexpr int kGain = 2;  // Conv3XC's gain1: the channels inside its chain, times its ends'
constexpr std::array<float, 3> kRgbMean = {0.4488f, 0.4371f, 0.4040f};
constexpr float kImageRange = 255.0f;

// One Conv3XC's training convs as the files store them.
struct Conv3xc {
  Tensor sk_w, sk_b;  // 1x1 skip
  Tensor w1, b1;      // 1x1, cin -> cin * gain
  Tensor w2, b2;      // 3x3 without padding, cin * gain -> cout * gain
  Tensor w3, b3;      // 1x1, cout * gain -> cout
};

Conv3xc bind_conv3xc(ParameterBinder& bind, const std::string& p, int64_t cin, int64_t cout) {
  Conv3xc c;
  c.sk_w = bind(p + ".sk.weight", {cout, cin, 1, 1});
  c.sk_b = bind(p + ".sk.bias", {cout});
  c.w1 = bind(p + ".conv.0.weight", {cin * kGain, cin, 1, 1});
  c.b1 = bind(p + ".conv.0.bias", {cin * kGain});
  c.w2 = bind(p + ".conv.1.weight", {cout * kGain, cin * kGain, 3, 3});
  c.b2 = bind(p + ".conv.1.bias", {cout * kGain});
  c.w3 = bind(p + ".conv.2.weight", {cout, cout * kGain, 1, 1});
  c.b3 = bind(p + ".conv.2.bias", {cout});
  // spandrel's cached fold of the convs above: bound so the file is checked whole, not read.
  bind(p + ".eval_conv.weight", {cout, cin, 3, 3});
  bind(p + ".eval_conv.bias", {cout});
  return c;
}

std::string block_name(int k, int r) {
  return fmt::format("block_{}.c{}_r", k + 1, r + 1);
}

struct FileWeights {
  Conv3xc conv_1, conv_2;
  std::vector<std::array<Conv3xc, 3>> blocks;
  Tensor cat_w, cat_b, up_w, up_b;
};

FileWeights bind_file(ParameterBinder& bind, const SpanConfig& c) {
  const int64_t f = c.features;
  FileWeights w;
  w.conv_1 = bind_conv3xc(bind, "conv_1", c.in_channels, f);
  for (int k = 0; k < kBlocks; ++k) {
    std::array<Conv3xc, 3> block;
    for (int r = 0; r < 3; ++r) block[r] = bind_conv3xc(bind, block_name(k, r), f, f);
    w.blocks.push_back(std::move(block));
  }
  w.cat_w = bind("conv_cat.weight", {f, 4 * f, 1, 1});
  w.cat_b = bind("conv_cat.bias", {f});
  w.conv_2 = bind_conv3xc(bind, "conv_2", f, f);
  const int64_t shuffled = c.out_channels * c.scale * c.scale;
  w.up_w = bind("upsampler.0.weight", {shuffled, f, 3, 3});
  w.up_b = bind("upsampler.0.bias", {shuffled});
  return w;
}

// Conv3XC.update_params in double: the chain's kernel
//   W[o, i, y, x] = sum_b w3[o, b] sum_a w2[b, a, y, x] w1[a, i]  (+ sk[o, i] at the centre)
// and bias  B[o] = sum_b w3[o, b] (sum_{a,y,x} w2[b, a, y, x] b1[a] + b2[b]) + b3[o] + sk_b[o].
Span::Conv fold(const Conv3xc& c) {
  const int64_t cout = c.w3.size(0), mid_out = c.w2.size(0), mid_in = c.w2.size(1);
  const int64_t cin = c.w1.size(1);
  const auto w1 = c.w1.to_f32_vector(), b1 = c.b1.to_f32_vector(), w2 = c.w2.to_f32_vector();
  const auto b2 = c.b2.to_f32_vector(), w3 = c.w3.to_f32_vector(), b3 = c.b3.to_f32_vector();
  const auto sk_w = c.sk_w.to_f32_vector(), sk_b = c.sk_b.to_f32_vector();
  // The first two convs: W12[b, i, t] and B12[b], t the 9 taps.
  std::vector<double> w12(static_cast<size_t>(mid_out * cin * 9), 0.0), b12(mid_out, 0.0);
  for (int64_t b = 0; b < mid_out; ++b) {
    double bias = b2[b];
    for (int64_t a = 0; a < mid_in; ++a)
      for (int t = 0; t < 9; ++t) {
        const double v = w2[(b * mid_in + a) * 9 + t];
        bias += v * b1[a];
        for (int64_t i = 0; i < cin; ++i) w12[(b * cin + i) * 9 + t] += v * w1[a * cin + i];
      }
    b12[b] = bias;
  }
  std::vector<float> weight(static_cast<size_t>(cout * cin * 9)), bias(cout);
  for (int64_t o = 0; o < cout; ++o) {
    double acc_b = static_cast<double>(b3[o]) + sk_b[o];
    for (int64_t b = 0; b < mid_out; ++b)
      acc_b += static_cast<double>(w3[o * mid_out + b]) * b12[b];
    bias[o] = static_cast<float>(acc_b);
    for (int64_t i = 0; i < cin; ++i)
      for (int t = 0; t < 9; ++t) {
        double acc = t == 4 ? sk_w[o * cin + i] : 0.0;
        for (int64_t b = 0; b < mid_out; ++b)
          acc += static_cast<double>(w3[o * mid_out + b]) * w12[(b * cin + i) * 9 + t];
        weight[(o * cin + i) * 9 + t] = static_cast<float>(acc);
      }
  }
  return {Tensor::from_f32({cout, cin, 3, 3}, weight), Tensor::from_f32({cout}, bias)};
}

// The folded network by the names io::WeightStore holds it under (prefix.weight / .bias).
struct Folded {
  Span::Conv conv_1, conv_2, cat, up;
  std::vector<Span::Block> blocks;
};

Span::Conv bind_conv(ParameterBinder& bind, const std::string& p, int64_t cin, int64_t cout,
                     int64_t k) {
  return {bind(p + ".weight", {cout, cin, k, k}), bind(p + ".bias", {cout})};
}

Folded bind_folded(ParameterBinder& bind, const SpanConfig& c) {
  const int64_t f = c.features;
  Folded m;
  m.conv_1 = bind_conv(bind, "conv_1", c.in_channels, f, 3);
  for (int k = 0; k < kBlocks; ++k)
    m.blocks.push_back({bind_conv(bind, block_name(k, 0), f, f, 3),
                        bind_conv(bind, block_name(k, 1), f, f, 3),
                        bind_conv(bind, block_name(k, 2), f, f, 3)});
  m.cat = bind_conv(bind, "conv_cat", 4 * f, f, 1);
  m.conv_2 = bind_conv(bind, "conv_2", f, f, 3);
  m.up = bind_conv(bind, "upsampler.0", f, c.out_channels * c.scale * c.scale, 3);
  return m;
}

io::WeightStore folded_store(const FileWeights& w) {
  io::WeightStore store;
  const auto put = [&](const std::string& name, const Span::Conv& conv) {
    store.add(name + ".weight", conv.weight);
    store.add(name + ".bias", conv.bias);
  };
  put("conv_1", fold(w.conv_1));
  for (int k = 0; k < kBlocks; ++k)
    for (int r = 0; r < 3; ++r) put(block_name(k, r), fold(w.blocks[k][r]));
  put("conv_cat", {w.cat_w, w.cat_b});
  put("conv_2", fold(w.conv_2));
  put("upsampler.0", {w.up_w, w.up_b});
  return store;
}

Tensor conv(const Span::Conv& c, const Tensor& x) {
  return ops::conv2d(x, c.weight, c.bias, 1, static_cast<int>(c.weight.size(2)) / 2);
}

}  // namespace

SpanConfig SpanConfig::infer_from_weights(const io::WeightStore& weights) {
  const std::string& source = weights.description();
  const Tensor sk = weights.get("conv_1.sk.weight");
  const Tensor up = weights.get("upsampler.0.weight");
  ZF_CHECK(sk.ndim() == 4 && up.ndim() == 4 && sk.size(0) > 0 && sk.size(1) > 0,
           "[span] {}: conv_1.sk and upsampler.0 must be conv kernels, got {} and {}", source,
           shape_str(sk.shape()), shape_str(up.shape()));
  SpanConfig c;
  c.in_channels = sk.size(1);
  c.features = sk.size(0);
  c.norm = !weights.contains("no_norm");
  const auto split = split_shuffled_channels(up.size(0), c.in_channels);
  ZF_CHECK(split.has_value(),
           "[span] {}: upsampler.0's {} outputs are no output channel count times a square scale "
           "up to 8",
           source, up.size(0));
  c.out_channels = split->channels;
  c.scale = split->scale;
  // The normalisation subtracts a mean per RGB channel.
  ZF_CHECK(!c.norm || c.in_channels == 3,
           "[span] {}: a normalising SPAN needs 3 input channels (RGB), not {}", source,
           c.in_channels);
  log::info("[span] {}: {}", source, c.summary());
  return c;
}

std::string SpanConfig::summary() const {
  return fmt::format("{}x SPAN, {} features{}", scale, features, norm ? "" : ", no input norm");
}

std::vector<ParameterSpec> span_parameters(const SpanConfig& config) {
  ParameterBinder bind(nullptr);
  bind_file(bind, config);
  return bind.take_specs();
}

Span::Span(const SpanConfig& config, const io::WeightStore& weights, const Placement& placement)
    : config_(config), placement_(placement) {
  ParameterBinder bind_in_file(&weights, config_.summary());
  const FileWeights file = bind_file(bind_in_file, config_);
  warn_unread_tensors(weights, bind_in_file.take_specs().size() + (config_.norm ? 0 : 1), "span",
                      config_.summary());
  const io::WeightStore folded = folded_store(file);
  Folded m = bind_placed(folded, placement_, "span", config_.summary(),
                         [&](ParameterBinder& bind) { return bind_folded(bind, config_); });
  conv_1_ = std::move(m.conv_1);
  conv_2_ = std::move(m.conv_2);
  conv_cat_ = std::move(m.cat);
  upsampler_ = std::move(m.up);
  blocks_ = std::move(m.blocks);
}

double Span::flops(int64_t height, int64_t width) const {
  const double f = static_cast<double>(config_.features), cells = double(height) * width;
  const double shuffled = static_cast<double>(config_.out_channels) * config_.scale * config_.scale;
  const double taps = 9.0 * (config_.in_channels * f + (3.0 * kBlocks + 1) * f * f + f * shuffled);
  return 2.0 * cells * (taps + 4.0 * f * f);  // the 3x3 convs and conv_cat's 1x1
}

Tensor Span::block(const Block& b, const Tensor& x, Tensor* first) const {
  const Tensor a1 = ops::silu(conv(b.c1, x));
  const Tensor o3 = conv(b.c3, ops::silu(conv(b.c2, a1)));
  // sigmoid(o3) - 0.5, written as 0.5 tanh(o3 / 2).
  const Tensor attention = ops::mul_scalar(ops::tanh(ops::mul_scalar(o3, 0.5f)), 0.5f);
  if (first != nullptr) *first = a1;
  return ops::mul(ops::add(o3, x), attention);
}

Tensor Span::upscale(const Tensor& image) const {
  ZF_CHECK(image.ndim() == 4 && image.size(1) == config_.in_channels,
           "[span] expected a picture [B, {}, H, W], got {}", config_.in_channels,
           shape_str(image.shape()));
  Tensor x = image.contiguous().clone();
  if (config_.norm) {
    const int64_t plane = x.size(2) * x.size(3);
    float* v = x.data<float>();
    for (int64_t p = 0; p < x.size(0) * 3; ++p)
      for (int64_t i = 0; i < plane; ++i)
        v[p * plane + i] = (v[p * plane + i] - kRgbMean[p % 3]) * kImageRange;
  }
  const Tensor feature = conv(conv_1_, placement_.activation(x));
  std::vector<Tensor> outs;
  Tensor y = feature, last_first;
  for (size_t k = 0; k < blocks_.size(); ++k) {
    y = block(blocks_[k], y, k + 1 == blocks_.size() ? &last_first : nullptr);
    if (k == 0) outs.push_back(y);
  }
  const Tensor merged =
      conv(conv_cat_, ops::concat({feature, conv(conv_2_, y), outs[0], last_first}, 1));
  return pixel_shuffle(float32_on(conv(upsampler_, merged), Device::CPU), config_.scale);
}

}  // namespace zflow::models
