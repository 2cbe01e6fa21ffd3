// AUTOMATIC1111's variation seed ("Variation seed", "Variation strength"; its API's subseed and
// subseed_strength): the start noise of seed S is bent towards that of another seed by spherical
// interpolation, so a small strength keeps a picture's composition and varies its details, and
// strength 1 gives the other seed's picture. How one design becomes many close variants.
//
// A1111's slerp(t, low, high) (modules/processing.py), on each image's noise [C, h, w] with
// low = the seed's noise and high = the variation seed's, normalised along dim 1 (h, as A1111's
// torch.norm(dim=1) does on that shape), so each (c, x) column of h values is one pair of vectors:
//   dot = sum(low_n * high_n);  omega = acos(dot)
//   res = sin((1 - t) omega) / sin(omega) * low + sin(t omega) / sin(omega) * high
// and, when an image's mean dot over its columns is above 0.9995, A1111's linear fall-back
// low * t + high * (1 - t) (its weights swapped, kept as A1111 has them).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"

namespace zflow::pipeline {

struct VariationSeed {
  uint64_t seed = 0;
  float strength = 0.0f;  // in [0, 1]; 0 leaves the noise as it is

  bool operator==(const VariationSeed&) const = default;
};

// Whether `variation` changes anything (set, strength above 0).
bool varies(const std::optional<VariationSeed>& variation);

// A1111's infotext keys for it, ", Variation seed: S, Variation seed strength: T", or "" when it
// does not vary the noise; and the request JSON's {"seed": S, "strength": T} (null likewise).
std::string variation_infotext(const std::optional<VariationSeed>& variation);
nlohmann::json variation_json(const std::optional<VariationSeed>& variation);

// A1111's slerp of low and high [B, C, h, w] (float32, the same shape), per image and column.
Tensor variation_slerp(float t, const Tensor& low, const Tensor& high);

// noise [B, C, h, w] as a request with `variation` starts from: slerp(strength, noise,
// randn(noise's shape) from a generator seeded with the variation seed, in `math`); the noise
// itself without a variation or at strength 0.
Tensor varied_noise(const Tensor& noise, const std::optional<VariationSeed>& variation,
                    NormalMath math);

}  // namespace zflow::pipeline
