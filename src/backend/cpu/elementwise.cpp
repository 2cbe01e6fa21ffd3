// Elementwise float32 kernels, split across the compute pool in runs of at least
// 64K elements (below that a thread costs more than it saves).
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

constexpr int64_t kGrain = 1 << 16;

template <typename Fn>
Tensor map(const Tensor& x, Fn fn) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* in = x.data<float>();
  float* out = y.data<float>();
  parallel_for(
      x.numel(),
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = fn(in[i]);
      },
      kGrain);
  return y;
}

}  // namespace

std::vector<float> widen(const Tensor& t) {
  if (!t.defined()) return {};
  std::vector<float> out(static_cast<size_t>(t.numel()));
  const Tensor c = t.contiguous();
  to_f32(c.raw(), c.dtype(), out.data(), out.size());
  return out;
}

Tensor unary(const Tensor& x, Unary op) {
  switch (op) {
    case Unary::Silu:
      return map(x, [](float v) { return v / (1.0f + std::exp(-v)); });
    case Unary::Exp:
      return map(x, [](float v) { return std::exp(v); });
    case Unary::Tanh:
      return map(x, [](float v) { return std::tanh(v); });
    case Unary::GeluErf:
      return map(x, [](float v) { return 0.5f * v * (1.0f + std::erf(v * 0.70710678118654752f)); });
    case Unary::GeluTanh:
      return map(x, [](float v) {
        const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);  // sqrt(2/pi)
        return 0.5f * v * (1.0f + std::tanh(inner));
      });
    case Unary::GeluQuick:
      return map(x, [](float v) { return v / (1.0f + std::exp(-1.702f * v)); });
  }
  return {};
}

Tensor binary(const Tensor& a, const Tensor& b, Binary op) {
  Tensor y = Tensor::empty(a.shape(), DType::F32);
  const float* pa = a.data<float>();
  const float* pb = b.data<float>();
  float* out = y.data<float>();
  parallel_for(
      a.numel(),
      [&](int64_t begin, int64_t end) {
        switch (op) {
          case Binary::Add:
            for (int64_t i = begin; i < end; ++i) out[i] = pa[i] + pb[i];
            break;
          case Binary::Mul:
            for (int64_t i = begin; i < end; ++i) out[i] = pa[i] * pb[i];
            break;
          case Binary::SiluMul:
            for (int64_t i = begin; i < end; ++i)
              out[i] = pa[i] / (1.0f + std::exp(-pa[i])) * pb[i];
            break;
        }
      },
      kGrain);
  return y;
}

Tensor affine_scalar(const Tensor& x, float mul, float add) {
  return map(x, [mul, add](float v) { return v * mul + add; });
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  return map(x, [lo, hi](float v) { return std::clamp(v, lo, hi); });
}

Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return map(x, [negative_slope](float v) { return v >= 0.0f ? v : v * negative_slope; });
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  if (y.numel() == 0) return y;
  const std::vector<float> a = widen(slope);
  const int64_t channels = x.size(1), plane = x.numel() / (x.size(0) * channels);
  const float* in = x.data<float>();
  float* out = y.data<float>();
  parallel_for(
      x.size(0) * channels,
      [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) {
          const float s = a[static_cast<size_t>(p % channels)];
          for (int64_t i = p * plane; i < (p + 1) * plane; ++i)
            out[i] = in[i] >= 0.0f ? in[i] : in[i] * s;
        }
      },
      std::max<int64_t>(1, kGrain / plane));
  return y;
}

}  // namespace zflow::cpu
