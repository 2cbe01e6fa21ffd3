// comfy-kitchen's row-wise int8 quantisation (quantize_int8_rowwise), shared by the weight
// quantiser (io/int8_weights.h) and the activations of the W8A8 linear (backend/cpu/linear_int8):
//   scale = max(max_i |x_i| / 127, 1e-30);   q_i = clamp(round_half_even(x_i / scale), -128, 127)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace zflow {

// A row holding a NaN gets a NaN scale, as torch's amax propagates it: the NaN shows in every
// output of that row instead of vanishing into a code.
inline float int8_row_scale(const float* x, int64_t n) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return std::numeric_limits<float>::quiet_NaN();
    amax = std::max(amax, std::fabs(x[i]));
  }
  return std::max(amax / 127.0f, 1e-30f);
}

// q[i] = the integer code of x[i], as an int8_t (a NaN becomes 0) or as the float holding it (a
// NaN stays NaN, so it shows in the output). q may be x.
template <typename Q>
void quantize_int8_row(const float* x, int64_t n, float scale, Q* q) {
  // Adding and taking away 1.5 * 2^23 leaves a float of magnitude below 2^22 rounded to an
  // integer, half to even, in the default rounding mode: nearbyint without a library call per
  // value. Clamped first, so only values within [-128, 127] get there.
  constexpr float kRound = 12582912.0f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::clamp(x[i] / scale, -128.0f, 127.0f);
    const float rounded = (v + kRound) - kRound;
    if constexpr (std::is_integral_v<Q>) {
      q[i] = static_cast<Q>(rounded == rounded ? rounded : 0.0f);
    } else {
      q[i] = rounded;
    }
  }
}

}  // namespace zflow
