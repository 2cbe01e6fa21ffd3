// Per-row normalisations over the last dim: RMSNorm and LayerNorm, each optionally followed
// in the same pass by the adaLN modulation or gated residual of a NormEpilogue. Statistics
// are accumulated in float64 (rows are at most a few thousand features, so this costs
// nothing next to the matmuls and removes any dependence on summation order).
#include <cmath>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/row_norms.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

// A NormEpilogue's steps on the normalised row r of x[B, L, D]; the gated residual in
// add_gated's order (token_ops.cpp), so that the fused and the composed op agree bit for bit.
class Epilogue {
 public:
  Epilogue(const NormEpilogue& e, const Tensor& x)
      : scale_(data(e.scale)),
        shift_(data(e.shift)),
        residual_(data(e.residual)),
        gate_(data(e.gate)),
        len_(x.ndim() >= 2 ? x.size(-2) : 1) {}

  void apply(int64_t r, float* out, int64_t d) const {
    const int64_t v = (r / len_) * d;  // the sample's vectors
    if (scale_ != nullptr)
      for (int64_t i = 0; i < d; ++i) out[i] = out[i] * (1.0f + scale_[v + i]);
    if (shift_ != nullptr)
      for (int64_t i = 0; i < d; ++i) out[i] = out[i] + shift_[v + i];
    if (residual_ == nullptr) return;
    const float* res = residual_ + r * d;
    if (gate_ != nullptr) {
      for (int64_t i = 0; i < d; ++i) out[i] = res[i] + gate_[v + i] * out[i];
    } else {
      for (int64_t i = 0; i < d; ++i) out[i] = res[i] + out[i];
    }
  }

 private:
  static const float* data(const Tensor& t) { return t.defined() ? t.data<float>() : nullptr; }

  const float *scale_, *shift_, *residual_, *gate_;
  int64_t len_;
};

template <typename RowFn>
Tensor per_row(const Tensor& x, const NormEpilogue& then, RowFn fn) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const int64_t d = x.size(-1);
  const int64_t rows = d == 0 ? 0 : x.numel() / d;
  const float* in = x.data<float>();
  float* out = y.data<float>();
  const Epilogue epilogue(then, x);
  parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          fn(in + r * d, out + r * d, d);
          epilogue.apply(r, out + r * d, d);
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(d, 1)));
  return y;
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, const NormEpilogue& then) {
  const std::vector<float> w = widen(weight);
  return per_row(x, then, [&](const float* in, float* out, int64_t d) {
    const float inv = rms_inverse(in, d, eps);
    for (int64_t i = 0; i < d; ++i) out[i] = in[i] * inv * (w.empty() ? 1.0f : w[i]);
  });
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                  const NormEpilogue& then) {
  const std::vector<float> w = widen(weight);
  const std::vector<float> b = widen(bias);
  return per_row(x, then, [&](const float* in, float* out, int64_t d) {
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
