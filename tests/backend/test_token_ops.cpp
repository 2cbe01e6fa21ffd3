// The token-sequence ops against their definitions, computed here in double.
// Tolerance 1e-6 relative: one float multiply (and add) per element; concat, patchify,
// unpatchify and fill_rows only move values and must be exact.
#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

TEST(TokenOps, AddGatedMatchesDefinition) {
  const int64_t b = 2, l = 3, d = 5;
  const Tensor x = test::random_tensor({b, l, d}, 1), r = test::random_tensor({b, l, d}, 2);
  const Tensor v = test::random_tensor({b, d}, 3);
  const auto xs = x.to_f32_vector(), rs = r.to_f32_vector(), vs = v.to_f32_vector();
  std::vector<double> gated;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t t = 0; t < l; ++t)
      for (int64_t c = 0; c < d; ++c) {
        const size_t at = static_cast<size_t>((i * l + t) * d + c),
                     vi = static_cast<size_t>(i * d + c);
        gated.push_back(xs[at] + static_cast<double>(vs[vi]) * rs[at]);
      }
  EXPECT_LE(test::relative_error(ops::add_gated(x, v, r), gated), 1e-6);
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

// Token (h, w) of sample b at row h * (W/p) + w, feature (ph * p + pw) * C + c, from the
// definition in facts/zimage.md 1.3; an odd patch (3), channels (5) and a non-square grid.
TEST(TokenOps, PatchifyAndUnpatchifyMatchDefinition) {
  const int64_t b = 2, c = 5, p = 3, h = 6, w = 9, length = 7;
  const Tensor x = test::random_tensor({b, c, h, w}, 10);
  const auto xv = x.to_f32_vector();
  const Tensor tokens = ops::patchify(x, p, length);
  ASSERT_EQ(tokens.shape(), (Shape{b, length, p * p * c}));
  const auto tv = tokens.to_f32_vector();
  const int64_t wt = w / p, image_tokens = (h / p) * wt, features = p * p * c;
  for (int64_t i = 0; i < b; ++i)
    for (int64_t row = 0; row < length; ++row)
      for (int64_t f = 0; f < features; ++f) {
        const int64_t ph = f / (p * c), pw = (f / c) % p, ch = f % c;
        const float want = row >= image_tokens
                               ? 0.0f
                               : xv[static_cast<size_t>(((i * c + ch) * h + row / wt * p + ph) * w +
                                                        row % wt * p + pw)];
        ASSERT_EQ(tv[static_cast<size_t>((i * length + row) * features + f)], want)
            << i << " " << row << " " << f;
      }
  EXPECT_EQ(ops::unpatchify(tokens, c, h, w, p).to_f32_vector(), xv);
  EXPECT_THROW(ops::patchify(x, p, image_tokens - 1), Error);  // too short
  EXPECT_THROW(ops::patchify(x, 4, 32), Error);                // 6 x 9 is not whole 4x4 patches
  EXPECT_THROW(ops::unpatchify(tokens, c + 1, h, w, p), Error);
}

TEST(TokenOps, FillRowsMatchesDefinition) {
  const int64_t b = 3, l = 5, d = 4;
  const Tensor x = test::random_tensor({b, l, d}, 11), row = test::random_tensor({d}, 12);
  const std::vector<int64_t> begin = {1, 0, 5}, end = {3, 5, 5};
  const auto xv = x.to_f32_vector(), rv = row.to_f32_vector();
  const auto with_row = ops::fill_rows(x, row, begin, end).to_f32_vector();
  const auto with_zero = ops::fill_rows(x, Tensor{}, begin, end).to_f32_vector();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t r = 0; r < l; ++r)
      for (int64_t k = 0; k < d; ++k) {
        const size_t at = static_cast<size_t>((i * l + r) * d + k);
        const bool filled = r >= begin[static_cast<size_t>(i)] && r < end[static_cast<size_t>(i)];
        EXPECT_EQ(with_row[at], filled ? rv[static_cast<size_t>(k)] : xv[at]);
        EXPECT_EQ(with_zero[at], filled ? 0.0f : xv[at]);
      }
  EXPECT_EQ(x.to_f32_vector(), xv);  // a copy: x is unchanged
  const std::vector<int64_t> two = {0, 1};
  EXPECT_THROW(ops::fill_rows(x, row, two, two), Error);  // one range per sample
  EXPECT_THROW(ops::fill_rows(x, row, std::vector<int64_t>{0, 0, 4}, std::vector<int64_t>{1, 1, 6}),
               Error);  // past the end
  EXPECT_THROW(ops::fill_rows(x, test::random_tensor({d + 1}, 13), begin, end), Error);
}

TEST(TokenOps, RejectVectorsOfTheWrongShape) {
  const Tensor x = test::random_tensor({2, 3, 5}, 1);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({1, 5}, 2), x), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 4}, 2), x), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 5}, 2), test::random_tensor({2, 3, 4}, 3)),
               Error);
}

}  // namespace
}  // namespace zflow
