// The token-sequence ops against their definitions, computed here in double.
// Tolerance 1e-6 relative: one float multiply (and add) per element; concat is exact.
#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

TEST(TokenOps, ScaleTokensAndAddGatedMatchDefinition) {
  const int64_t b = 2, l = 3, d = 5;
  const Tensor x = test::random_tensor({b, l, d}, 1), r = test::random_tensor({b, l, d}, 2);
  const Tensor v = test::random_tensor({b, d}, 3);
  const auto xs = x.to_f32_vector(), rs = r.to_f32_vector(), vs = v.to_f32_vector();
  std::vector<double> scaled, gated;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < l; ++t)
      for (int64_t c = 0; c < d; ++c) {
        const size_t at = static_cast<size_t>((i * l + t) * d + c),
                     vi = static_cast<size_t>(i * d + c);
        scaled.push_back(static_cast<double>(xs[at]) * vs[vi]);
        gated.push_back(xs[at] + static_cast<double>(vs[vi]) * rs[at]);
      }
  EXPECT_LE(test::relative_error(ops::scale_tokens(x, v), scaled), 1e-6);
  EXPECT_LE(test::relative_error(ops::add_gated(x, v, r), gated), 1e-6);
}

TEST(TokenOps, ModulateMatchesDefinition) {
  const int64_t b = 2, l = 3, d = 5;
  const Tensor x = test::random_tensor({b, l, d}, 4);
  const Tensor shift = test::random_tensor({b, d}, 5), scale = test::random_tensor({b, d}, 6);
  const auto xs = x.to_f32_vector(), sh = shift.to_f32_vector(), sc = scale.to_f32_vector();
  std::vector<double> want;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < l; ++t)
      for (int64_t c = 0; c < d; ++c) {
        const size_t at = static_cast<size_t>((i * l + t) * d + c),
                     vi = static_cast<size_t>(i * d + c);
        want.push_back(static_cast<double>(xs[at]) * (1.0 + sc[vi]) + sh[vi]);
      }
  EXPECT_LE(test::relative_error(ops::modulate(x, shift, scale), want), 1e-6);
  EXPECT_THROW(ops::modulate(x, shift, test::random_tensor({2, 4}, 7)), Error);
}

// torch.cat semantics on every dim, with a strided (permuted) part.
TEST(TokenOps, ConcatMatchesDefinition) {
  const Tensor a = test::random_tensor({2, 3, 4}, 8);
  const Tensor b = test::random_tensor({2, 4, 3}, 9).permute({0, 2, 1});  // [2, 3, 4], strided
  const auto av = a.to_f32_vector(), bv = b.to_f32_vector();
  for (int dim = 0; dim < 3; ++dim) {
    const Tensor y = ops::concat({a, b}, dim);
    Shape want_shape = {2, 3, 4};
    want_shape[static_cast<size_t>(dim)] *= 2;
    ASSERT_EQ(y.shape(), want_shape);
    const auto yv = y.to_f32_vector();
    for (int64_t i = 0; i < want_shape[0]; ++i)
      for (int64_t j = 0; j < want_shape[1]; ++j)
        for (int64_t k = 0; k < want_shape[2]; ++k) {
          int64_t idx[3] = {i, j, k};
          const int64_t part = a.size(dim);
          const bool second = idx[dim] >= part;
          if (second) idx[dim] -= part;
          const float want =
              (second ? bv : av)[static_cast<size_t>((idx[0] * 3 + idx[1]) * 4 + idx[2])];
          EXPECT_EQ(yv[static_cast<size_t>((i * want_shape[1] + j) * want_shape[2] + k)], want);
        }
  }
  EXPECT_THROW(ops::concat({a, test::random_tensor({2, 3, 5}, 1)}, 1), Error);
  EXPECT_THROW(ops::concat({}, 0), Error);
}

TEST(TokenOps, RejectVectorsOfTheWrongShape) {
  const Tensor x = test::random_tensor({2, 3, 5}, 1);
  EXPECT_THROW(ops::scale_tokens(x, test::random_tensor({1, 5}, 2)), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 4}, 2), x), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 5}, 2), test::random_tensor({2, 3, 4}, 3)),
               Error);
}

}  // namespace
}  // namespace zflow
