// The transformer ops (RMSNorm, LayerNorm, RoPE in both pair layouts, embedding, SwiGLU
// gate, tanh) against their definitions evaluated in double. Feature counts 31/32/33
// straddle vector widths. Tolerance 1e-6 of the output scale: each output is a handful
// of float32 operations on inputs of order one.
#include <cmath>

#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

constexpr double kTol = 1e-6;

TEST(RmsNorm, MatchesDefinition) {
  for (int64_t d : {31, 32, 33, 128}) {
    const Tensor x = test::random_tensor({3, 5, d}, static_cast<uint32_t>(d), -3.0f, 3.0f);
    const Tensor w = test::random_tensor({d}, 99).to(DType::BF16);
    const auto xv = test::as_double(x), wv = test::as_double(w);
    std::vector<double> want(xv.size()), want_plain(xv.size());
    for (int64_t r = 0; r < 15; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < d; ++i) ss += xv[r * d + i] * xv[r * d + i];
      const double inv = 1.0 / std::sqrt(ss / d + 1e-5);
      for (int64_t i = 0; i < d; ++i) {
        want[r * d + i] = xv[r * d + i] * inv * wv[i];
        want_plain[r * d + i] = xv[r * d + i] * inv;
      }
    }
    EXPECT_LE(test::relative_error(ops::rms_norm(x, w, 1e-5f), want), kTol) << d;
    EXPECT_LE(test::relative_error(ops::rms_norm(x, {}, 1e-5f), want_plain), kTol) << d;
  }
  EXPECT_THROW(ops::rms_norm(test::random_tensor({2, 4}, 1), test::random_tensor({5}, 2), 1e-6f),
               Error);
}

TEST(LayerNorm, MatchesDefinitionWithAndWithoutAffine) {
  const int64_t d = 33;
  const Tensor x = test::random_tensor({4, d}, 5, 1.0f, 4.0f);  // a non-zero mean
  const Tensor w = test::random_tensor({d}, 6);
  const Tensor b = test::random_tensor({d}, 7);
  const auto xv = test::as_double(x), wv = test::as_double(w), bv = test::as_double(b);
  std::vector<double> affine(xv.size()), plain(xv.size());
  for (int64_t r = 0; r < 4; ++r) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mean += xv[r * d + i] / d;
    for (int64_t i = 0; i < d; ++i) var += (xv[r * d + i] - mean) * (xv[r * d + i] - mean) / d;
    for (int64_t i = 0; i < d; ++i) {
      plain[r * d + i] = (xv[r * d + i] - mean) / std::sqrt(var + 1e-6);
      affine[r * d + i] = plain[r * d + i] * wv[i] + bv[i];
    }
  }
  EXPECT_LE(test::relative_error(ops::layer_norm(x, w, b, 1e-6f), affine), kTol);
  EXPECT_LE(test::relative_error(ops::layer_norm(x, {}, {}, 1e-6f), plain), kTol);
}

// Pair j of a head is (2j, 2j+1) interleaved or (j, j + D/2) half-split.
std::vector<double> rope_reference(const Tensor& x, const Tensor& cos, const Tensor& sin,
                                   bool interleaved) {
  const auto xv = test::as_double(x), cv = test::as_double(cos), sv = test::as_double(sin);
  const int64_t batch = x.size(0), len = x.size(1), heads = x.size(2), d = x.size(3);
  std::vector<double> out(xv.size());
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t l = 0; l < len; ++l)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < d / 2; ++j) {
          const int64_t base = ((b * len + l) * heads + h) * d;
          const int64_t i1 = interleaved ? 2 * j : j, i2 = interleaved ? 2 * j + 1 : j + d / 2;
          const int64_t t = ((cos.size(0) == 1 ? 0 : b) * len + l) * (d / 2) + j;
          out[base + i1] = xv[base + i1] * cv[t] - xv[base + i2] * sv[t];
          out[base + i2] = xv[base + i1] * sv[t] + xv[base + i2] * cv[t];
        }
  return out;
}

TEST(Rope, BothPairLayoutsAndPerBatchTables) {
  const Tensor x = test::random_tensor({2, 7, 3, 10}, 21);
  for (const int64_t table_batch : {1, 2}) {
    const Tensor angles = test::random_tensor({table_batch, 7, 5}, 22, -6.0f, 6.0f);
    std::vector<float> c, s;
    for (float a : angles.to_f32_vector()) {
      c.push_back(std::cos(a));
      s.push_back(std::sin(a));
    }
    const Tensor cos = Tensor::from_f32(angles.shape(), c),
                 sin = Tensor::from_f32(angles.shape(), s);
    EXPECT_LE(test::relative_error(ops::rope(x, cos, sin, ops::RopeLayout::kInterleaved),
                                   rope_reference(x, cos, sin, true)),
              kTol);
    EXPECT_LE(test::relative_error(ops::rope(x, cos, sin, ops::RopeLayout::kHalfSplit),
                                   rope_reference(x, cos, sin, false)),
              kTol);
  }
  const Tensor wrong = test::random_tensor({1, 7, 4}, 23);
  EXPECT_THROW(ops::rope(x, wrong, wrong, ops::RopeLayout::kHalfSplit), Error);
}

TEST(Embedding, GathersRowsOfAStoredTable) {
  const Tensor table = test::random_tensor({10, 6}, 31).to(DType::BF16);
  const std::vector<int32_t> ids = {3, 0, 9, 3};
  const Tensor y = ops::embedding(table, ids);
  ASSERT_EQ(y.shape(), (Shape{4, 6}));
  const auto tv = test::as_double(table);
  std::vector<double> want;
  for (int32_t id : ids)
    for (int64_t i = 0; i < 6; ++i) want.push_back(tv[id * 6 + i]);
  EXPECT_EQ(test::relative_error(y, want), 0.0);  // a copy: exact
  const std::vector<int32_t> bad = {10};
  EXPECT_THROW(ops::embedding(table, bad), Error);
}

TEST(Elementwise, SiluMulAndTanh) {
  const Tensor a = test::random_tensor({5, 33}, 41, -6.0f, 6.0f);
  const Tensor b = test::random_tensor({5, 33}, 42);
  const auto av = test::as_double(a), bv = test::as_double(b);
  std::vector<double> gate(av.size()), th(av.size());
  for (size_t i = 0; i < av.size(); ++i) {
    gate[i] = av[i] / (1.0 + std::exp(-av[i])) * bv[i];
    th[i] = std::tanh(av[i]);
  }
  EXPECT_LE(test::relative_error(ops::silu_mul(a, b), gate), kTol);
  EXPECT_LE(test::relative_error(ops::tanh(a), th), kTol);
}

TEST(Elementwise, GeluVariants) {
  const Tensor x = test::random_tensor({3, 33}, 51, -5.0f, 5.0f);
  const auto xv = test::as_double(x);
  std::vector<double> erf_ref, tanh_ref, quick_ref;
  for (double v : xv) {
    erf_ref.push_back(0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0))));
    tanh_ref.push_back(0.5 * v *
                       (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v))));
    quick_ref.push_back(v / (1.0 + std::exp(-1.702 * v)));
  }
  EXPECT_LE(test::relative_error(ops::gelu(x, ops::GeluKind::kErf), erf_ref), kTol);
  EXPECT_LE(test::relative_error(ops::gelu(x, ops::GeluKind::kTanh), tanh_ref), kTol);
  EXPECT_LE(test::relative_error(ops::gelu(x, ops::GeluKind::kQuick), quick_ref), kTol);
}

TEST(Softmax, MatchesDefinitionOnLargeLogits) {
  // Logits of +-80 would overflow exp() without the max subtraction.
  const Tensor x = test::random_tensor({4, 31}, 61, -80.0f, 80.0f);
  const auto xv = test::as_double(x);
  std::vector<double> want(xv.size());
  for (int r = 0; r < 4; ++r) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < 31; ++i) mx = std::max(mx, xv[r * 31 + i]);
    for (int i = 0; i < 31; ++i) sum += std::exp(xv[r * 31 + i] - mx);
    for (int i = 0; i < 31; ++i) want[r * 31 + i] = std::exp(xv[r * 31 + i] - mx) / sum;
  }
  EXPECT_LE(test::relative_error(ops::softmax(x), want), kTol);
}

}  // namespace
}  // namespace zflow
