#include "models/flux_rope.h"

#include <cmath>
#include <numeric>

#include "core/error.h"

namespace zflow::models {

RopeTables flux_rope_tables(std::span<const float> positions, std::span<const int64_t> axes_dims,
                            double theta, Device device) {
  const size_t axes = axes_dims.size();
  ZF_CHECK(axes > 0 && positions.size() % axes == 0,
           "[flux] rope: {} position values are not whole tokens of {} axes", positions.size(),
           axes);
  const int64_t s = static_cast<int64_t>(positions.size() / axes);
  const int64_t half = std::accumulate(axes_dims.begin(), axes_dims.end(), int64_t{0}) / 2;
  RopeTables host{Tensor::empty({1, s, half}, DType::F32), Tensor::empty({1, s, half}, DType::F32)};
  float* cs = host.cos.data<float>();
  float* sn = host.sin.data<float>();
  for (int64_t i = 0; i < s; ++i) {
    int64_t at = i * half;
    for (size_t a = 0; a < axes; ++a) {
      const double pos = static_cast<double>(positions[static_cast<size_t>(i) * axes + a]);
      const double dim = static_cast<double>(axes_dims[a]);
      for (int64_t j = 0; j < axes_dims[a] / 2; ++j, ++at) {
        const double omega = 1.0 / std::pow(theta, static_cast<double>(2 * j) / dim);
        cs[at] = static_cast<float>(std::cos(pos * omega));
        sn[at] = static_cast<float>(std::sin(pos * omega));
      }
    }
  }
  return {host.cos.to(device), host.sin.to(device)};
}

}  // namespace zflow::models
