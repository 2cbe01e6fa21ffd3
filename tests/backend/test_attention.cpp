// attention against softmax(q k^T * scale) v computed row by row in double with the
// full score row. Lengths straddle the kernel's query block (64) and key block (256):
// 1, 63, 65, 257, 300, so partial blocks and several online-softmax rescales are hit.
// Tolerance 2e-6 of the output scale (float32 scores and exponentials).
#include <cmath>

#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"
#include "test_util.h"

namespace zflow {
namespace {

// Query head h of batch b reads kv head h / (H / Hkv); row i sees keys [0, visible(b, i)).
std::vector<double> attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                        double scale, const ops::AttentionMask& mask = {}) {
  const auto qv = test::as_double(q), kv = test::as_double(k), vv = test::as_double(v);
  const int64_t batch = q.size(0), heads = q.size(1), kv_heads = k.size(1), lq = q.size(2),
                lk = k.size(2), d = q.size(3), dv = v.size(3);
  std::vector<double> out(static_cast<size_t>(batch * heads * lq * dv));
  std::vector<double> s(static_cast<size_t>(lk));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t hq = 0; hq < heads; ++hq)
      for (int64_t i = 0; i < lq; ++i) {
        const int64_t h = b * heads + hq;
        const int64_t hk = b * kv_heads + hq / (heads / kv_heads);
        int64_t visible = mask.key_lengths.empty() ? lk : mask.key_lengths[b];
        if (mask.causal) visible = std::min(visible, i + 1);
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < visible; ++j) {
          double dot = 0.0;
          for (int64_t e = 0; e < d; ++e)
            dot += qv[(h * lq + i) * d + e] * kv[(hk * lk + j) * d + e];
          s[j] = dot * scale;
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < visible; ++j) sum += s[j] = std::exp(s[j] - mx);
        for (int64_t e = 0; e < dv; ++e) {
          double acc = 0.0;
          for (int64_t j = 0; j < visible; ++j) acc += s[j] * vv[(hk * lk + j) * dv + e];
          out[(h * lq + i) * dv + e] = acc / sum;
        }
      }
  return out;
}

TEST(Attention, MatchesSoftmaxDefinition) {
  struct Case {
    int64_t b, h, lq, lk, d, dv;
  };
  uint32_t seed = 11;
  for (const Case& c : {Case{2, 3, 65, 300, 8, 12}, Case{1, 1, 63, 257, 17, 17},
                        Case{2, 1, 1, 1, 5, 3}, Case{1, 2, 130, 64, 32, 32}}) {
    // Scores spread over several units, so the softmax is neither flat nor one-hot.
    const Tensor q = test::random_tensor({c.b, c.h, c.lq, c.d}, seed++, -2.0f, 2.0f);
    const Tensor k = test::random_tensor({c.b, c.h, c.lk, c.d}, seed++, -2.0f, 2.0f);
    const Tensor v = test::random_tensor({c.b, c.h, c.lk, c.dv}, seed++);
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    const Tensor y = ops::attention(q, k, v, scale);
    ASSERT_EQ(y.shape(), (Shape{c.b, c.h, c.lq, c.dv}));
    EXPECT_LE(test::relative_error(y, attention_reference(q, k, v, scale)), 2e-6)
        << "lq " << c.lq << " lk " << c.lk;
  }
}

// Under MatmulPrecision::Bfloat16 (where the processor has the bfloat16-pair kernel) Q, K, V
// and the probabilities P are rounded to bfloat16. Against the definition on Q, K, V rounded
// to bfloat16, only P's rounding remains: each p moves by at most 2^-9 of itself, so an output,
// a p-weighted mean of values, moves by at most 2^-9 max|v| (and the denominator, summed from
// unrounded p, by as much again): 2^-8 max|v| per element, plus float32 rounding.
TEST(Attention, Bfloat16MatmulsStayWithinRoundingOfTheProbabilities) {
  const test::ScopedMatmulPrecision bf16(cpu::MatmulPrecision::Bfloat16);
  auto rounded = [](const Tensor& t) { return t.to(DType::BF16).to(DType::F32); };
  struct Case {
    int64_t lq, lk;
    ops::AttentionMask mask;
  };
  uint32_t seed = 31;
  for (const Case& c : {Case{130, 300, {}}, Case{130, 300, {.key_lengths = {300, 77}}},
                        Case{257, 257, {.causal = true}}}) {
    const ops::AttentionMask& mask = c.mask;
    const Tensor q = test::random_tensor({2, 4, c.lq, 64}, seed++, -2.0f, 2.0f);
    const Tensor k = test::random_tensor({2, 2, c.lk, 64}, seed++, -2.0f, 2.0f);
    const Tensor v = test::random_tensor({2, 2, c.lk, 48}, seed++);
    const float scale = 0.125f;
    const std::vector<float> y = ops::attention(q, k, v, scale, mask).to_f32_vector();
    const std::vector<double> want =
        attention_reference(rounded(q), rounded(k), rounded(v), scale, mask);
    double max_v = 0.0;
    for (float x : v.to_f32_vector()) max_v = std::max(max_v, double(std::fabs(x)));
    const double tol = std::ldexp(max_v, -8) + 1e-6;
    for (size_t i = 0; i < y.size(); ++i)
      ASSERT_NEAR(y[i], want[i], tol) << "element " << i << " causal " << mask.causal;
  }
}

// A strided (transposed) view is accepted and read as its logical values.
TEST(Attention, AcceptsStridedViews) {
  const Tensor q = test::random_tensor({1, 20, 2, 8}, 1).permute({0, 2, 1, 3});
  const Tensor k = test::random_tensor({1, 30, 2, 8}, 2).permute({0, 2, 1, 3});
  const Tensor v = test::random_tensor({1, 30, 2, 4}, 3).permute({0, 2, 1, 3});
  const Tensor y = ops::attention(q, k, v, 0.5f);
  EXPECT_LE(test::relative_error(
                y, attention_reference(q.contiguous(), k.contiguous(), v.contiguous(), 0.5)),
            2e-6);
}

// Causal masking (Qwen3's text encoder), per-sample key lengths (a batch of captions of
// different lengths) and grouped-query heads (Qwen3: 32 query heads over 8 kv heads), with
// lengths that straddle the 64-query and 256-key blocks.
TEST(Attention, MasksAndGroupedQueryHeads) {
  uint32_t seed = 40;
  for (const int64_t len : {1, 33, 65, 300}) {
    const Tensor q = test::random_tensor({2, 4, len, 16}, seed++, -2.0f, 2.0f);
    const Tensor k = test::random_tensor({2, 2, len, 16}, seed++, -2.0f, 2.0f);
    const Tensor v = test::random_tensor({2, 2, len, 8}, seed++);
    const float scale = 0.25f;
    const ops::AttentionMask causal{.causal = true};
    EXPECT_LE(test::relative_error(ops::attention(q, k, v, scale, causal),
                                   attention_reference(q, k, v, scale, causal)),
              2e-6)
        << "causal, length " << len;
    const ops::AttentionMask lengths{.key_lengths = {len, (len + 1) / 2}};
    EXPECT_LE(test::relative_error(ops::attention(q, k, v, scale, lengths),
                                   attention_reference(q, k, v, scale, lengths)),
              2e-6)
        << "key lengths, length " << len;
    const ops::AttentionMask both{.causal = true, .key_lengths = {(len + 2) / 3, len}};
    EXPECT_LE(test::relative_error(ops::attention(q, k, v, scale, both),
                                   attention_reference(q, k, v, scale, both)),
              2e-6)
        << "causal and key lengths, length " << len;
  }
}

TEST(Attention, RejectsBadMasksAndHeadCounts) {
  const Tensor q = test::random_tensor({1, 3, 4, 8}, 1);
  const Tensor k = test::random_tensor({1, 2, 4, 8}, 2);
  EXPECT_THROW(ops::attention(q, k, k, 1.0f), Error);  // 2 kv heads do not divide 3
  const Tensor k3 = test::random_tensor({1, 3, 5, 8}, 3);
  EXPECT_THROW(ops::attention(q, k3, k3, 1.0f, {.causal = true}), Error);  // Lq != Lk
  EXPECT_THROW(ops::attention(q, k3, k3, 1.0f, {.key_lengths = {0}}), Error);
  EXPECT_THROW(ops::attention(q, k3, k3, 1.0f, {.key_lengths = {2, 2}}), Error);
}

}  // namespace
}  // namespace zflow
