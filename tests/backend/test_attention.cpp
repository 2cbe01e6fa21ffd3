// attention against softmax(q k^T * scale) v computed row by row in double with the
// full score row. Lengths straddle the kernel's query block (64) and key block (256):
// 1, 63, 65, 257, 300, so partial blocks and several online-softmax rescales are hit.
// Tolerance 2e-6 of the output scale (float32 scores and exponentials).
#include <cmath>

#include "backend/ops.h"
#include "op_test_util.h"

namespace zflow {
namespace {

std::vector<double> attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                        double scale) {
  const auto qv = test::as_double(q), kv = test::as_double(k), vv = test::as_double(v);
  const int64_t heads = q.size(0) * q.size(1), lq = q.size(2), lk = k.size(2), d = q.size(3),
                dv = v.size(3);
  std::vector<double> out(static_cast<size_t>(heads * lq * dv));
  std::vector<double> s(static_cast<size_t>(lk));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < lq; ++i) {
      double mx = -INFINITY, sum = 0.0;
      for (int64_t j = 0; j < lk; ++j) {
        double dot = 0.0;
        for (int64_t e = 0; e < d; ++e) dot += qv[(h * lq + i) * d + e] * kv[(h * lk + j) * d + e];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      for (int64_t j = 0; j < lk; ++j) sum += s[j] = std::exp(s[j] - mx);
      for (int64_t e = 0; e < dv; ++e) {
        double acc = 0.0;
        for (int64_t j = 0; j < lk; ++j) acc += s[j] * vv[(h * lk + j) * dv + e];
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

}  // namespace
}  // namespace zflow
