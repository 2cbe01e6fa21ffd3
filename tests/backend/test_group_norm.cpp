// group_norm against the definition in double: per (n, group) mean and biased variance,
// y = (x - mean) / sqrt(var + eps) * gamma + beta (torch.nn.functional.group_norm).
// Tolerance 1e-6 of the output scale: the kernel's statistics are float64 too, only
// the final float32 multiply-add rounds.
#include <cmath>

#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

std::vector<double> group_norm_reference(const Tensor& x, int groups, const Tensor& gamma,
                                         const Tensor& beta, double eps, bool silu) {
  const auto xv = test::as_double(x), g = test::as_double(gamma), b = test::as_double(beta);
  const int64_t batch = x.size(0), c = x.size(1), spatial = x.numel() / (batch * c);
  const int64_t per = c / groups;
  std::vector<double> out(xv.size());
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t grp = 0; grp < groups; ++grp) {
      const int64_t base = (n * c + grp * per) * spatial, count = per * spatial;
      double mean = 0.0, var = 0.0;
      for (int64_t i = 0; i < count; ++i) mean += xv[base + i];
      mean /= count;
      for (int64_t i = 0; i < count; ++i) var += (xv[base + i] - mean) * (xv[base + i] - mean);
      var /= count;
      for (int64_t i = 0; i < count; ++i) {
        const int64_t ch = grp * per + i / spatial;
        double y = (xv[base + i] - mean) / std::sqrt(var + eps) * g[ch] + b[ch];
        if (silu) y = y / (1.0 + std::exp(-y));
        out[base + i] = y;
      }
    }
  return out;
}

TEST(GroupNorm, MatchesDefinitionOnOddShapes) {
  struct Case {
    Shape x;
    int groups;
  };
  // A large offset (mean 3 with spread 1) checks the variance is not computed as
  // E[x^2] - E[x]^2 in float32.
  for (const Case& c : {Case{{2, 6, 5, 7}, 3}, Case{{1, 32, 9, 11}, 8}, Case{{2, 12, 13}, 4},
                        Case{{1, 3, 4, 5}, 1}}) {
    for (DType t : {DType::F32, DType::BF16}) {
      const Tensor x = test::random_tensor(c.x, 3, 2.0f, 4.0f);
      const Tensor gamma = test::random_tensor({c.x[1]}, 4).to(t);
      const Tensor beta = test::random_tensor({c.x[1]}, 5).to(t);
      for (bool silu : {false, true}) {
        const Tensor y = silu ? ops::group_norm_silu(x, c.groups, gamma, beta, 1e-6f)
                              : ops::group_norm(x, c.groups, gamma, beta, 1e-6f);
        EXPECT_LE(
            test::relative_error(y, group_norm_reference(x, c.groups, gamma, beta, 1e-6, silu)),
            1e-6)
            << shape_str(c.x) << " groups " << c.groups << " silu " << silu;
      }
    }
  }
}

TEST(GroupNorm, RejectsGroupsThatDoNotDivideChannels) {
  const Tensor x = test::random_tensor({1, 6, 2, 2}, 1);
  const Tensor g = test::random_tensor({6}, 2);
  EXPECT_THROW(ops::group_norm(x, 4, g, g, 1e-6f), Error);
}

}  // namespace
}  // namespace zflow
