#include "models/zimage_rope.h"

#include <cmath>

#include "core/error.h"

namespace zflow::models {

ZImageRope::ZImageRope(std::vector<int64_t> axes_dims, std::vector<int64_t> axes_lens, double theta)
    : axes_dims_(std::move(axes_dims)), axes_lens_(std::move(axes_lens)) {
  ZF_CHECK(axes_dims_.size() == 3 && axes_lens_.size() == 3,
           "[zimage] rope: axes_dims and axes_lens must have 3 entries, got {} and {}",
           axes_dims_.size(), axes_lens_.size());
  for (int64_t d : axes_dims_) {
    ZF_CHECK(d > 0 && d % 2 == 0, "[zimage] rope: axes_dims entry {} is not positive and even", d);
    std::vector<double> omega;
    // torch: 1.0 / (theta ** (arange(0, d, 2, float64) / d))
    for (int64_t i = 0; i < d; i += 2)
      omega.push_back(1.0 / std::pow(theta, static_cast<double>(i) / static_cast<double>(d)));
    omega_.push_back(std::move(omega));
    head_dim_ += d;
  }
}

ZImageRope::Tables ZImageRope::tables(const std::vector<std::vector<ZImagePosition>>& positions,
                                      int64_t length) const {
  const int64_t batch = static_cast<int64_t>(positions.size()), half = head_dim_ / 2;
  Tables t{Tensor::zeros({batch, length, half}, DType::F32),
           Tensor::zeros({batch, length, half}, DType::F32)};
  float* cos = t.cos.data<float>();
  float* sin = t.sin.data<float>();
  for (int64_t b = 0; b < batch; ++b) {
    const auto& list = positions[static_cast<size_t>(b)];
    ZF_CHECK(static_cast<int64_t>(list.size()) <= length,
             "[zimage] rope: {} positions for a table of {} rows", list.size(), length);
    for (size_t l = 0; l < list.size(); ++l) {
      int64_t at = (b * length + static_cast<int64_t>(l)) * half;
      for (size_t a = 0; a < 3; ++a) {
        const int64_t pos = list[l][a];
        ZF_CHECK(pos >= 0 && pos < axes_lens_[a],
                 "[zimage] rope: position {} on axis {} is outside the table of axes_lens[{}] = {} "
                 "(caption or image too large)",
                 pos, a, a, axes_lens_[a]);
        for (double w : omega_[a]) {
          const float angle = static_cast<float>(static_cast<double>(pos) * w);
          cos[at] = std::cos(angle);
          sin[at] = std::sin(angle);
          ++at;
        }
      }
    }
  }
  return t;
}

}  // namespace zflow::models
