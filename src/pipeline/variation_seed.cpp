#include "pipeline/variation_seed.h"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "core/error.h"

namespace zflow::pipeline {

Tensor variation_slerp(float t, const Tensor& low, const Tensor& high) {
  ZF_CHECK(low.ndim() == 4 && low.shape() == high.shape(),
           "[variation] slerp needs two [B, C, h, w] tensors of one shape, got {} and {}",
           shape_str(low.shape()), shape_str(high.shape()));
  const Tensor a = low.contiguous(), b = high.contiguous();
  const int64_t channels = a.size(1), h = a.size(2), w = a.size(3), plane = channels * h * w;
  Tensor out = Tensor::empty(a.shape(), DType::F32);
  std::vector<float> dot(static_cast<size_t>(channels * w));
  for (int64_t image = 0; image < a.size(0); ++image) {
    const float* lo = a.data<float>() + image * plane;
    const float* hi = b.data<float>() + image * plane;
    float* o = out.data<float>() + image * plane;
    // Per column (c, x): the cosine of its two h-vectors, in float32 as torch computes them.
    double dot_sum = 0.0;
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t x = 0; x < w; ++x) {
        float ll = 0.0f, hh = 0.0f;
        for (int64_t y = 0; y < h; ++y) {
          const int64_t i = (c * h + y) * w + x;
          ll += lo[i] * lo[i];
          hh += hi[i] * hi[i];
        }
        const float nl = std::sqrt(ll), nh = std::sqrt(hh);
        float d = 0.0f;
        for (int64_t y = 0; y < h; ++y) {
          const int64_t i = (c * h + y) * w + x;
          d += (lo[i] / nl) * (hi[i] / nh);
        }
        dot[static_cast<size_t>(c * w + x)] = d;
        dot_sum += d;
      }
    if (dot_sum / static_cast<double>(channels * w) > 0.9995) {
      for (int64_t i = 0; i < plane; ++i) o[i] = lo[i] * t + hi[i] * (1.0f - t);
      continue;
    }
    for (int64_t c = 0; c < channels; ++c)
      for (int64_t x = 0; x < w; ++x) {
        const float omega = std::acos(dot[static_cast<size_t>(c * w + x)]);
        const float so = std::sin(omega);
        const float wl = std::sin((1.0f - t) * omega) / so, wh = std::sin(t * omega) / so;
        for (int64_t y = 0; y < h; ++y) {
          const int64_t i = (c * h + y) * w + x;
          o[i] = wl * lo[i] + wh * hi[i];
        }
      }
  }
  return out;
}

bool varies(const std::optional<VariationSeed>& variation) {
  return variation && variation->strength != 0.0f;
}

std::string variation_infotext(const std::optional<VariationSeed>& variation) {
  if (!varies(variation)) return {};
  return fmt::format(", Variation seed: {}, Variation seed strength: {}", variation->seed,
                     variation->strength);
}

nlohmann::json variation_json(const std::optional<VariationSeed>& variation) {
  if (!varies(variation)) return nullptr;
  return {{"seed", variation->seed}, {"strength", variation->strength}};
}

Tensor varied_noise(const Tensor& noise, const std::optional<VariationSeed>& variation,
                    NormalMath math) {
  if (!varies(variation)) return noise;
  ZF_CHECK(variation->strength > 0.0f && variation->strength <= 1.0f,
           "[variation] strength must be in [0, 1], got {}", variation->strength);
  Generator other(variation->seed, math);
  return variation_slerp(variation->strength, noise, other.randn(noise.shape()));
}

}  // namespace zflow::pipeline
