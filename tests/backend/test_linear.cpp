// linear and matmul against their definitions in double. Tolerance 2e-6 of the output
// scale: float32 accumulation over K <= 70 products; 16-bit weights are compared with
// the same widened values.
#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

TEST(Linear, MatchesDefinition) {
  const int64_t b = 2, t = 7, k = 37, n = 19;
  uint32_t seed = 21;
  for (DType dt : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor x = test::random_tensor({b, t, k}, seed++);
    const Tensor w = test::random_tensor({n, k}, seed++).to(dt);
    const Tensor bias = test::random_tensor({n}, seed++).to(dt);
    const auto xv = test::as_double(x), wv = test::as_double(w), bv = test::as_double(bias);
    std::vector<double> want(static_cast<size_t>(b * t * n));
    for (int64_t r = 0; r < b * t; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double acc = bv[j];
        for (int64_t e = 0; e < k; ++e) acc += xv[r * k + e] * wv[j * k + e];
        want[r * n + j] = acc;
      }
    const Tensor y = ops::linear(x, w, bias);
    ASSERT_EQ(y.shape(), (Shape{b, t, n}));
    EXPECT_LE(test::relative_error(y, want), 2e-6) << dtype_name(dt);
  }
}

// A scaled float8 weight (one byte a value, Tensor::scale()) against the definition with its
// values w = float(code) * scale in double: the same tolerance, the codes widen exactly and
// the scale multiplies each float32 dot product once (one more rounding, 6e-8).
TEST(Linear, ScaledFloat8WeightMatchesDefinition) {
  const int64_t m = 13, k = 67, n = 35;
  uint32_t seed = 41;
  for (DType dt : {DType::F8_E4M3, DType::F8_E5M2}) {
    const Tensor x = test::random_tensor({m, k}, seed++);
    const Tensor w = test::random_tensor({n, k}, seed++).to(dt).with_scale(0.0371f);
    const Tensor bias = test::random_tensor({n}, seed++);
    const auto xv = test::as_double(x), wv = test::as_double(w), bv = test::as_double(bias);
    std::vector<double> want(static_cast<size_t>(m * n));
    for (int64_t r = 0; r < m; ++r)
      for (int64_t j = 0; j < n; ++j) {
        double acc = bv[j];
        for (int64_t e = 0; e < k; ++e) acc += xv[r * k + e] * wv[j * k + e];
        want[r * n + j] = acc;
      }
    EXPECT_LE(test::relative_error(ops::linear(x, w, bias), want), 2e-6) << dtype_name(dt);
  }
}

TEST(Linear, NamesTheMismatch) {
  try {
    ops::linear(test::random_tensor({3, 5}, 1), test::random_tensor({4, 6}, 2));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "[linear] w has shape [4, 6], expected [4, 5]");
  }
}

TEST(Matmul, MatchesDefinitionPerBatch) {
  const int64_t batch = 3, m = 9, k = 70, n = 5;
  const Tensor a = test::random_tensor({batch, m, k}, 31);
  const Tensor b = test::random_tensor({batch, k, n}, 32);
  const auto av = test::as_double(a), bv = test::as_double(b);
  std::vector<double> want(static_cast<size_t>(batch * m * n));
  for (int64_t i = 0; i < batch; ++i)
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        double acc = 0.0;
        for (int64_t e = 0; e < k; ++e) acc += av[(i * m + r) * k + e] * bv[(i * k + e) * n + c];
        want[(i * m + r) * n + c] = acc;
      }
  EXPECT_LE(test::relative_error(ops::matmul(a, b), want), 2e-6);
}

}  // namespace
}  // namespace zflow
