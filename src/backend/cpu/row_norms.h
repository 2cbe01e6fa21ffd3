// The RMSNorm statistic shared by the CPU norms (norms.cpp) and the fused QK-norm + RoPE
// (rope.cpp), so that both normalise a row identically.
#pragma once

#include <cmath>
#include <cstdint>

namespace zflow::cpu {

// 1 / sqrt(mean(row^2) + eps), the mean accumulated in float64.
inline float rms_inverse(const float* row, int64_t d, float eps) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(row[i]) * row[i];
  return static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps));
}

}  // namespace zflow::cpu
