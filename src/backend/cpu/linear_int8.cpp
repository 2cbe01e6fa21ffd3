// ops::linear with an int8 weight that has row scales (io/int8_weights.h), computed as ComfyUI
// computes it (comfy-kitchen's int8_linear; stable-diffusion.cpp's int8 convrot path the same):
// W8A8 with dynamic per-row activation scales.
//   x_rot  = x · H                               (ConvRot's rotation, when the weight has one)
//   s_x[r] = max(max_i |x_rot[r, i]| / 127, 1e-30)
//   q[r,i] = clamp(round_half_even(x_rot[r, i] / s_x[r]), -128, 127)
//   y[r,o] = (sum_i q[r, i] * w[o, i]) * (s_x[r] * s_w[o]) + b[o]
// The integer products run on gemm_s8 (int8 x int8 in int32, AVX-512 VNNI) where the processor
// has it, else through gemm as floats: integers up to 128 are exact in float32 and in
// bfloat16, so the sums are the int32 sums while they stay below 2^24.
#include <algorithm>
#include <cmath>

#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/kernels.h"
#include "core/hadamard.h"
#include "core/int8_rows.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

namespace {

// Quantises each row of x[m, k] (rotated first when group > 0) into q[m, k], int8 codes or the
// floats holding them, and its scale into scales[m].
template <typename Q>
void quantize_rows(const float* x, int64_t m, int64_t k, int64_t group, Q* q, float* scales) {
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(k));
        for (int64_t r = begin; r < end; ++r) {
          std::copy_n(x + r * k, k, row.data());
          if (group > 0) rotate_hadamard_groups(row.data(), k, group);
          scales[r] = int8_row_scale(row.data(), k);
          quantize_int8_row(row.data(), k, scales[r], q + r * k);
        }
      },
      16);
}

void integer_products(const float* x, int64_t m, const Tensor& w, const float* bias, float* out) {
  const int64_t n = w.size(0), k = w.size(1);
  std::vector<int8_t> q(static_cast<size_t>(m * k));
  std::vector<float> x_scale(static_cast<size_t>(m));
  quantize_rows(x, m, k, w.hadamard_group(), q.data(), x_scale.data());
  GemmS8Args g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = q.data();
  g.lda = k;
  g.b = static_cast<const int8_t*>(w.raw());
  g.ldb = k;
  g.row_scale = x_scale.data();
  g.col_scale = w.row_scales().data();
  g.bias = bias;
  g.c = out;
  g.ldc = n;
  gemm_s8(g);
}

void float_products(const float* x, int64_t m, const Tensor& w, const float* bias, float* out) {
  const int64_t n = w.size(0), k = w.size(1);
  std::vector<float> q(static_cast<size_t>(m * k));
  std::vector<float> x_scale(static_cast<size_t>(m));
  quantize_rows(x, m, k, w.hadamard_group(), q.data(), x_scale.data());
  linear_product(q.data(), m, w, out);  // the int8 codes, widened exactly; w.scale() is 1
  const std::span<const float> w_scale = w.row_scales();
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t o = 0; o < n; ++o) {
            const float y = out[r * n + o] * (x_scale[r] * w_scale[o]);
            out[r * n + o] = bias != nullptr ? y + bias[o] : y;
          }
      },
      64);
}

}  // namespace

Tensor linear_int8_rows(const Tensor& x, const Tensor& w, const Tensor& b, Int8Products products) {
  const int64_t n = w.size(0), k = w.size(1);
  const int64_t m = shape_numel(std::span(x.shape()).first(x.shape().size() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = n;
  Tensor y = Tensor::empty(out_shape, DType::F32);
  if (m == 0 || n == 0) return y;
  const std::vector<float> bias = b.defined() ? widen(b) : std::vector<float>();
  const float* bias_data = bias.empty() ? nullptr : bias.data();
  const bool integer =
      products == Int8Products::Integer ||
      (products == Int8Products::Fastest && gemm_s8_available() && k <= kGemmS8MaxDepth);
  (integer ? integer_products : float_products)(x.data<float>(), m, w, bias_data, y.data<float>());
  return y;
}

}  // namespace zflow::cpu
