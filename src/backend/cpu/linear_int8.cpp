// ops::linear with an int8 weight that has row scales (io/int8_weights.h), computed as ComfyUI
// computes it (comfy-kitchen's int8_linear; stable-diffusion.cpp's int8 convrot path the same):
// W8A8 with dynamic per-row activation scales.
//   x_rot  = x · H                               (ConvRot's rotation, when the weight has one)
//   s_x[r] = max(max_i |x_rot[r, i]| / 127, 1e-30)
//   q[r,i] = clamp(round_half_even(x_rot[r, i] / s_x[r]), -128, 127)
//   y[r,o] = (sum_i q[r, i] * w[o, i]) * (s_x[r] * s_w[o]) + b[o]
// The integer products run on gemm_s8 (int8 x int8 in int32, AVX-512 VNNI) where the processor
// has it, else through gemm as floats: integers up to 128 are exact in float32 and in
// bfloat16, so the sums are the int32 sums while they stay below 2^24. Weights that share an
// input (q, k and v; w1 and w3) share its quantisation.
#include <algorithm>
#include <cmath>

#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/int8_rows_avx512.h"
#include "backend/cpu/kernels.h"
#include "core/error.h"
#include "core/hadamard.h"
#include "core/int8_rows.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

namespace {

// The rows of x[m, k] (rotated first when group > 0), quantised: int8 codes or the floats
// holding them, and each row's scale.
template <typename Q>
struct QuantizedRows {
  std::vector<Q> codes;  // [m, k]
  std::vector<float> scales;
};

template <typename Q>
QuantizedRows<Q> quantize_rows(const float* x, int64_t m, int64_t k, int64_t group) {
  QuantizedRows<Q> q{std::vector<Q>(static_cast<size_t>(m * k)),
                     std::vector<float>(static_cast<size_t>(m))};
  static const bool avx512 = int8_rows_avx512_available();
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(k));
        for (int64_t r = begin; r < end; ++r) {
          std::copy_n(x + r * k, k, row.data());
          if (group > 0) rotate_hadamard_groups(row.data(), k, group);
          if constexpr (std::is_same_v<Q, int8_t>) {
            if (avx512) {
              q.scales[r] = int8_row_scale_avx512(row.data(), k);
              quantize_int8_row_avx512(row.data(), k, q.scales[r], q.codes.data() + r * k);
              continue;
            }
          }
          q.scales[r] = int8_row_scale(row.data(), k);
          quantize_int8_row(row.data(), k, q.scales[r], q.codes.data() + r * k);
        }
      },
      16);
  return q;
}

void integer_product(const QuantizedRows<int8_t>& q, int64_t m, const Tensor& w, const float* bias,
                     float* out) {
  const int64_t n = w.size(0), k = w.size(1);
  GemmS8Args g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = q.codes.data();
  g.lda = k;
  g.b = static_cast<const int8_t*>(w.raw());
  g.ldb = k;
  g.row_scale = q.scales.data();
  g.col_scale = w.row_scales().data();
  g.bias = bias;
  g.c = out;
  g.ldc = n;
  gemm_s8(g);
}

void float_product(const QuantizedRows<float>& q, int64_t m, const Tensor& w, const float* bias,
                   float* out) {
  const int64_t n = w.size(0);
  linear_product(q.codes.data(), m, w, out);  // the int8 codes, widened exactly; w.scale() is 1
  const std::span<const float> w_scale = w.row_scales();
  parallel_for(
      m,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r)
          for (int64_t o = 0; o < n; ++o)
            out[r * n + o] = int8_product_output(out[r * n + o], q.scales[r], w_scale[o],
                                                 bias != nullptr ? bias + o : nullptr);
      },
      64);
}

// y = x @ w^T + b for each (w, b), x quantised once.
template <typename Q, typename Product>
std::vector<Tensor> products(const Tensor& x, std::span<const Tensor> ws,
                             std::span<const Tensor> bs, const Product& product) {
  const int64_t k = x.size(-1);
  const int64_t m = shape_numel(std::span(x.shape()).first(x.shape().size() - 1));
  const QuantizedRows<Q> q = quantize_rows<Q>(x.data<float>(), m, k, ws[0].hadamard_group());
  std::vector<Tensor> ys;
  for (size_t i = 0; i < ws.size(); ++i) {
    Shape out_shape = x.shape();
    out_shape.back() = ws[i].size(0);
    Tensor y = Tensor::empty(out_shape, DType::F32);
    const std::vector<float> bias = bs[i].defined() ? widen(bs[i]) : std::vector<float>();
    if (m > 0 && ws[i].size(0) > 0)
      product(q, m, ws[i], bias.empty() ? nullptr : bias.data(), y.data<float>());
    ys.push_back(std::move(y));
  }
  return ys;
}

}  // namespace

std::vector<Tensor> linear_int8_rows(const Tensor& x, std::span<const Tensor> ws,
                                     std::span<const Tensor> bs, Int8Products how) {
  ZF_CHECK(!ws.empty() && ws.size() == bs.size(),
           "[linear] {} int8 weights with {} biases: expected one each, at least one", ws.size(),
           bs.size());
  for (const Tensor& w : ws)
    ZF_CHECK(w.size(1) == x.size(-1) && w.hadamard_group() == ws[0].hadamard_group(),
             "[linear] int8 weights that share an input need its width {} and one ConvRot group "
             "({}), got [{}, {}] in group {}",
             x.size(-1), ws[0].hadamard_group(), w.size(0), w.size(1), w.hadamard_group());
  const bool integer =
      how == Int8Products::Integer ||
      (how == Int8Products::Fastest && gemm_s8_available() && x.size(-1) <= kGemmS8MaxDepth);
  return integer ? products<int8_t>(x, ws, bs, integer_product)
                 : products<float>(x, ws, bs, float_product);
}

Tensor linear_int8_rows(const Tensor& x, const Tensor& w, const Tensor& b, Int8Products how) {
  return linear_int8_rows(x, std::span(&w, 1), std::span(&b, 1), how).front();
}

}  // namespace zflow::cpu
