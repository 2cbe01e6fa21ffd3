// ops::linear with an int8 weight that has row scales (io/int8_weights.h), computed as ComfyUI
// computes it (comfy-kitchen's int8_linear; stable-diffusion.cpp's int8 convrot path the same):
// W8A8 with dynamic per-row activation scales.
//   x_rot  = x · H                               (ConvRot's rotation, when the weight has one)
//   s_x[r] = max(max_i |x_rot[r, i]| / 127, 1e-30)
//   q[r,i] = clamp(round_half_even(x_rot[r, i] / s_x[r]), -128, 127)
//   y[r,o] = (sum_i q[r, i] * w[o, i]) * (s_x[r] * s_w[o]) + b[o]
// The integer products run through gemm as floats: integers up to 128 are exact in float32
// and in bfloat16, so the sums are the int32 sums while they stay below 2^24.
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels.h"
#include "core/hadamard.h"
#include "core/int8_rows.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

Tensor linear_int8_rows(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t n = w.size(0), k = w.size(1);
  const int64_t m = shape_numel(std::span(x.shape()).first(x.shape().size() - 1));
  const int64_t group = w.hadamard_group();
  Shape out_shape = x.shape();
  out_shape.back() = n;
  Tensor y = Tensor::empty(out_shape, DType::F32);
  if (m == 0 || n == 0) return y;

  Tensor q = Tensor::empty({m, k}, DType::F32);
  std::vector<float> x_scale(static_cast<size_t>(m));
  const float* xs = x.data<float>();
  float* qs = q.data<float>();
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          float* row = qs + r * k;
          std::copy_n(xs + r * k, k, row);
          if (group > 0) rotate_hadamard_groups(row, k, group);
          x_scale[r] = int8_row_scale(row, k);
          quantize_int8_row(row, k, x_scale[r], row);
        }
      },
      16);

  float* out = y.data<float>();
  linear_product(qs, m, w, out);  // the int8 codes, widened exactly; w.scale() is 1

  const std::span<const float> w_scale = w.row_scales();
  const std::vector<float> bias = b.defined() ? widen(b) : std::vector<float>(n, 0.0f);
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t o = 0; o < n; ++o)
            out[r * n + o] = out[r * n + o] * (x_scale[r] * w_scale[o]) + bias[o];
      },
      64);
  return y;
}

}  // namespace zflow::cpu
