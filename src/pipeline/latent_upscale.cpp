#include "pipeline/latent_upscale.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

namespace {

constexpr std::array kNames = {"Latent",           "Latent (antialiased)",
                               "Latent (bicubic)", "Latent (bicubic antialiased)",
                               "Latent (nearest)", "Latent (nearest-exact)"};

// The input cells one output cell reads along an axis, and their weights.
struct Taps {
  std::vector<int64_t> index;
  std::vector<float> weight;
};

// Keys' cubic convolution with parameter a (torch's cubic_convolution1 within one cell,
// cubic_convolution2 within two).
float cubic(float x, float a) {
  x = std::abs(x);
  if (x <= 1.0f) return ((a + 2.0f) * x - (a + 3.0f)) * x * x + 1.0f;
  if (x < 2.0f) return ((a * x - 5.0f * a) * x + 8.0f * a) * x - 4.0f * a;
  return 0.0f;
}

std::vector<Taps> axis_taps(int64_t in, int64_t out, LatentUpscale mode) {
  const float scale = static_cast<float>(in) / static_cast<float>(out);
  std::vector<Taps> taps(static_cast<size_t>(out));
  const auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  for (int64_t o = 0; o < out; ++o) {
    Taps& t = taps[static_cast<size_t>(o)];
    const float centre = scale * (static_cast<float>(o) + 0.5f);
    switch (mode) {
      case LatentUpscale::Nearest:
        t = {{torch_nearest_index(o, in, out)}, {1.0f}};
        break;
      case LatentUpscale::NearestExact:
        t = {{std::min(static_cast<int64_t>(std::floor(centre)), in - 1)}, {1.0f}};
        break;
      case LatentUpscale::Bilinear: {
        const float source = std::max(centre - 0.5f, 0.0f);
        const auto low = static_cast<int64_t>(source);
        const float lambda = std::clamp(source - static_cast<float>(low), 0.0f, 1.0f);
        t = {{low, low < in - 1 ? low + 1 : low}, {1.0f - lambda, lambda}};
        break;
      }
      case LatentUpscale::Bicubic: {
        const float source = centre - 0.5f;
        const auto low = static_cast<int64_t>(std::floor(source));
        // aten UpSample.h get_cubic_upsample_coefficients, A = -0.75.
        const float f = source - static_cast<float>(low);
        t = {{clamp(low - 1), clamp(low), clamp(low + 1), clamp(low + 2)},
             {cubic(f + 1.0f, -0.75f), cubic(f, -0.75f), cubic(1.0f - f, -0.75f),
              cubic(2.0f - f, -0.75f)}};
        break;
      }
      case LatentUpscale::BilinearAntialiased:
      case LatentUpscale::BicubicAntialiased: {
        // aten UpSampleKernel.cpp _compute_indices_min_size_weights_aa: the filter's support
        // widened by the scale when shrinking; weights normalised to sum to one.
        const bool linear = mode == LatentUpscale::BilinearAntialiased;
        const float half = linear ? 1.0f : 2.0f;
        const float support = scale >= 1.0f ? half * scale : half;
        const float invscale = scale >= 1.0f ? 1.0f / scale : 1.0f;
        const int64_t first = std::max<int64_t>(static_cast<int64_t>(centre - support + 0.5f), 0);
        const int64_t count =
            std::min<int64_t>(static_cast<int64_t>(centre + support + 0.5f), in) - first;
        float total = 0.0f;
        for (int64_t j = 0; j < count; ++j) {
          const float x = (static_cast<float>(j + first) - centre + 0.5f) * invscale;
          const float w = linear ? std::max(1.0f - std::abs(x), 0.0f) : cubic(x, -0.5f);
          t.index.push_back(first + j);
          t.weight.push_back(w);
          total += w;
        }
        if (total != 0.0f)
          for (float& w : t.weight) w /= total;
        break;
      }
    }
  }
  return taps;
}

}  // namespace

std::string_view latent_upscale_name(LatentUpscale mode) {
  return kNames[static_cast<size_t>(mode)];
}

std::optional<LatentUpscale> parse_latent_upscale(std::string_view name) {
  // "Latent (bicubic antialiased)" and "latent-bicubic-antialiased" alike.
  const auto plain = [](std::string_view s) {
    std::string out;
    for (const char c : s) {
      if (c == '(' || c == ')') continue;
      out += c == ' ' || c == '_' ? '-'
                                  : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
  };
  for (size_t i = 0; i < kNames.size(); ++i)
    if (plain(name) == plain(kNames[i])) return static_cast<LatentUpscale>(i);
  return std::nullopt;
}

Tensor upscale_latents(const Tensor& latents, int64_t height, int64_t width, LatentUpscale mode) {
  ZF_CHECK(latents.shape().size() == 4 && latents.dtype() == DType::F32 &&
               latents.device() == Device::CPU,
           "[hires] latents to upscale must be float32 [B, C, h, w] on the CPU, got {}",
           shape_str(latents.shape()));
  ZF_CHECK(height > 0 && width > 0, "[hires] cannot resize latents to {}x{}", width, height);
  const Tensor x = latents.contiguous();
  const int64_t planes = x.size(0) * x.size(1), in_h = x.size(2), in_w = x.size(3);
  const std::vector<Taps> across = axis_taps(in_w, width, mode);
  const std::vector<Taps> down = axis_taps(in_h, height, mode);
  Tensor out = Tensor::empty({x.size(0), x.size(1), height, width}, DType::F32);
  std::vector<float> rows(static_cast<size_t>(in_h * width));  // one plane resized across
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data<float>() + p * in_h * in_w;
    for (int64_t y = 0; y < in_h; ++y)
      for (int64_t o = 0; o < width; ++o) {
        const Taps& t = across[static_cast<size_t>(o)];
        float sum = 0.0f;
        for (size_t k = 0; k < t.index.size(); ++k) sum += t.weight[k] * src[y * in_w + t.index[k]];
        rows[static_cast<size_t>(y * width + o)] = sum;
      }
    float* dst = out.data<float>() + p * height * width;
    for (int64_t o = 0; o < height; ++o) {
      const Taps& t = down[static_cast<size_t>(o)];
      for (int64_t c = 0; c < width; ++c) {
        float sum = 0.0f;
        for (size_t k = 0; k < t.index.size(); ++k)
          sum += t.weight[k] * rows[static_cast<size_t>(t.index[k] * width + c)];
        dst[o * width + c] = sum;
      }
    }
  }
  return out;
}

}  // namespace zflow::pipeline
