// Per-row normalisations over the last dim: RMSNorm and LayerNorm. Statistics are
// accumulated in float64 (rows are at most a few thousand features, so this costs
// nothing next to the matmuls and removes any dependence on summation order).
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

template <typename RowFn>
Tensor per_row(const Tensor& x, RowFn fn) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const int64_t d = x.size(-1);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  const float* in = x.data<float>();
  float* out = y.data<float>();
  parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) fn(in + r * d, out + r * d, d);
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(d, 1)));
  return y;
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps) {
  const std::vector<float> w = widen(weight);
  return per_row(x, [&](const float* in, float* out, int64_t d) {
    double sum_sq = 0.0;
    for (int64_t i = 0; i < d; ++i) sum_sq += static_cast<double>(in[i]) * in[i];
    const float inv = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps));
    for (int64_t i = 0; i < d; ++i) out[i] = in[i] * inv * (w.empty() ? 1.0f : w[i]);
  });
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const std::vector<float> w = widen(weight);
  const std::vector<float> b = widen(bias);
  return per_row(x, [&](const float* in, float* out, int64_t d) {
    double sum = 0.0;
    for (int64_t i = 0; i < d; ++i) sum += in[i];
    const double mean = sum / static_cast<double>(d);
    double var = 0.0;
    for (int64_t i = 0; i < d; ++i) var += (in[i] - mean) * (in[i] - mean);
    const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(d) + eps));
    const float m = static_cast<float>(mean);
    for (int64_t i = 0; i < d; ++i)
      out[i] = (in[i] - m) * inv * (w.empty() ? 1.0f : w[i]) + (b.empty() ? 0.0f : b[i]);
  });
}

}  // namespace zflow::cpu
