#include "models/upscaler.h"

#include "core/error.h"
#include "io/key_map_esrgan.h"
#include "models/esrgan.h"
#include "models/span.h"
#include "models/srvgg_compact.h"

namespace zflow::models {

Tensor pixel_shuffle(const Tensor& y, int s) {
  const Tensor in = y.contiguous();
  const int64_t b = in.size(0), c = in.size(1) / (s * s), h = in.size(2), w = in.size(3);
  Tensor out = Tensor::empty({b, c, h * s, w * s}, DType::F32);
  const float* src = in.data<float>();
  float* dst = out.data<float>();
  for (int64_t n = 0; n < b * c; ++n)
    for (int64_t r = 0; r < h * s; ++r)
      for (int64_t q = 0; q < w * s; ++q)
        *dst++ = src[((n * s * s + (r % s) * s + q % s) * h + r / s) * w + q / s];
  return out;
}

std::optional<ShuffledChannels> split_shuffled_channels(int64_t shuffled, int64_t in_channels) {
  for (int64_t channels : {in_channels, int64_t{3}, int64_t{4}, int64_t{1}}) {
    if (channels <= 0 || shuffled % channels != 0) continue;
    int64_t s = 1;
    while (s * s < shuffled / channels) ++s;
    if (s * s == shuffled / channels && s <= 8)
      return ShuffledChannels{channels, static_cast<int>(s)};
  }
  return std::nullopt;
}

std::optional<UpscalerArchitecture> detect_upscaler(const io::WeightStore& weights) {
  if (io::detect_esrgan_layout(weights)) return UpscalerArchitecture::Esrgan;
  // spandrel's test for Compact: a first conv and a PReLU after it in one module list.
  if (weights.contains("body.0.weight") && weights.contains("body.1.weight"))
    return UpscalerArchitecture::Compact;
  // spandrel's test for SPAN: its first Conv3XC's skip conv, blocks and upsampler.
  if (weights.contains("conv_1.sk.weight") && weights.contains("block_1.c1_r.sk.weight") &&
      weights.contains("conv_cat.weight") && weights.contains("upsampler.0.weight"))
    return UpscalerArchitecture::Span;
  return std::nullopt;
}

namespace {

struct Opened {
  io::WeightStore weights;
  UpscalerArchitecture architecture;
};

Opened open_upscaler(const std::filesystem::path& path) {
  io::WeightStore weights = io::without_basicsr_prefix(io::WeightStore::open(path));
  const std::optional<UpscalerArchitecture> arch = detect_upscaler(weights);
  ZF_CHECK(arch.has_value(),
           "[upscale] {}: not an upscaler zflow runs (ESRGAN / RRDBNet: conv_first, model.0 or "
           "RRDB_trunk weights; Real-ESRGAN Compact: body.0 and body.1; SPAN: conv_1.sk, "
           "block_1 .. block_6, conv_cat, upsampler.0)",
           path.string());
  return {std::move(weights), *arch};
}

}  // namespace

UpscalerDescription describe_upscaler(const std::filesystem::path& path) {
  const Opened o = open_upscaler(path);
  switch (o.architecture) {
    case UpscalerArchitecture::Span:
      return {"SPAN", SpanConfig::infer_from_weights(o.weights).scale};
    case UpscalerArchitecture::Compact:
      return {"RealESRGAN Compact", CompactConfig::infer_from_weights(o.weights).scale};
    case UpscalerArchitecture::Esrgan:
      break;
  }
  return {"ESRGAN", EsrganConfig::infer_from_weights(io::esrgan_to_basicsr(o.weights)).scale()};
}

std::unique_ptr<Upscaler> load_upscaler(const std::filesystem::path& path,
                                        const Placement& placement) {
  const auto [weights, arch] = open_upscaler(path);
  if (arch == UpscalerArchitecture::Span)
    return std::make_unique<Span>(SpanConfig::infer_from_weights(weights), weights, placement);
  if (arch == UpscalerArchitecture::Compact)
    return std::make_unique<SrvggCompact>(CompactConfig::infer_from_weights(weights), weights,
                                          placement);
  const io::WeightStore basicsr = io::esrgan_to_basicsr(weights);
  return std::make_unique<Esrgan>(EsrganConfig::infer_from_weights(basicsr), basicsr, placement);
}

}  // namespace zflow::models
