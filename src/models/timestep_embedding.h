// The sinusoidal features of a diffusion timestep, as diffusers' get_timestep_embedding with
// flip_sin_to_cos=True, downscale_freq_shift=0 (Z-Image's TimestepEmbedder and FLUX's
// Timesteps(256) use the same math): for half = dim / 2 frequencies
// omega_k = exp(-ln(10000) * k / half), k = 0..half-1, features [cos(s omega) | sin(s omega)],
// all in float32 with torch's operation order.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"

namespace zflow::models {

// [B, dim] float32 for the already scaled timesteps s[b] (t * 1000 for both families). dim even.
Tensor timestep_features(std::span<const float> scaled, int64_t dim);

}  // namespace zflow::models
