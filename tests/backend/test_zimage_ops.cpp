// The Z-Image modulation ops against their definitions, computed here in double.
// Tolerance 1e-6 relative: one float multiply (and add) per element.
#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

TEST(ZImageOps, ScaleTokensAndAddGatedMatchDefinition) {
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

TEST(ZImageOps, RejectVectorsOfTheWrongShape) {
  const Tensor x = test::random_tensor({2, 3, 5}, 1);
  EXPECT_THROW(ops::scale_tokens(x, test::random_tensor({1, 5}, 2)), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 4}, 2), x), Error);
  EXPECT_THROW(ops::add_gated(x, test::random_tensor({2, 5}, 2), test::random_tensor({2, 3, 4}, 3)),
               Error);
}

}  // namespace
}  // namespace zflow
