#include "models/timestep_embedding.h"

#include <cmath>

#include "core/error.h"

namespace zflow::models {

Tensor timestep_features(std::span<const float> scaled, int64_t dim) {
  ZF_CHECK(dim > 0 && dim % 2 == 0, "[timestep] feature count {} is not positive and even", dim);
  const int64_t b = static_cast<int64_t>(scaled.size()), half = dim / 2;
  Tensor out = Tensor::empty({b, dim}, DType::F32);
  float* f = out.data<float>();
  // exponent = -ln(10000) * arange(half, float32) / half, each step rounded to float32.
  const float neg_log_period = static_cast<float>(-std::log(10000.0));
  for (int64_t i = 0; i < b; ++i) {
    for (int64_t k = 0; k < half; ++k) {
      const float omega =
          std::exp(neg_log_period * static_cast<float>(k) / static_cast<float>(half));
      const float arg = scaled[static_cast<size_t>(i)] * omega;
      f[i * dim + k] = std::cos(arg);
      f[i * dim + half + k] = std::sin(arg);
    }
  }
  return out;
}

}  // namespace zflow::models
