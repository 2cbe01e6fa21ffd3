// exp_shifted against libm's expf and the float64 sum: within 2 ulp (Cephes' polynomial is
// accurate to about 1 ulp on |r| <= ln2 / 2, the reduction and scaling add at most one more
// rounding), exactly 0 below -87.33 and for -inf, exactly 1 at the row's maximum, and the
// returned sum equal to the float64 sum of what it wrote; for every length around the vector
// widths (tails of 1 to 15 lanes); for every implementation this processor can run.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/exp_shifted.h"

namespace zflow::cpu {
namespace {

TEST(ExpShifted, MatchesExpfWithinTwoUlp) {
  for (const ExpShiftedKernel& kernel : exp_shifted_kernels()) {
    SCOPED_TRACE(kernel.name);
    const float shift = 3.0f;
    std::vector<float> in;
    for (float x = -87.3f; x <= 0.0f; x += 0.0137f) in.push_back(x + shift);
    in.push_back(shift);  // exp(0)
    std::vector<float> out(in.size());
    const double sum = kernel.run(in.data(), out.data(), static_cast<int64_t>(in.size()), shift);
    double want_sum = 0.0;
    for (size_t i = 0; i < in.size(); ++i) {
      const float want = std::exp(in[i] - shift);
      const float ulp = std::nextafter(want, 1.0f) - want;
      ASSERT_LE(std::fabs(out[i] - want), 2.0f * ulp) << "x = " << in[i] - shift;
      want_sum += out[i];
    }
    EXPECT_EQ(out.back(), 1.0f);
    EXPECT_NEAR(sum, want_sum, 1e-12 * want_sum);
  }
}

TEST(ExpShifted, RowMaxFindsTheLargestAtEveryPosition) {
  for (const ExpShiftedKernel& kernel : exp_shifted_kernels())
    for (int64_t n = 1; n <= 40; ++n)
      for (int64_t at = 0; at < n; ++at) {
        std::vector<float> x(static_cast<size_t>(n), -std::numeric_limits<float>::infinity());
        for (int64_t i = 0; i < n; i += 2) x[i] = -5.0f - static_cast<float>(i);
        x[at] = -1.5f;
        ASSERT_EQ(kernel.max(x.data(), n), -1.5f) << kernel.name << " n " << n << " at " << at;
      }
  for (const ExpShiftedKernel& kernel : exp_shifted_kernels()) {
    const float hidden[3] = {-INFINITY, -INFINITY, -INFINITY};
    EXPECT_EQ(kernel.max(hidden, 3), -INFINITY) << kernel.name;
  }
}

TEST(ExpShifted, ListsItsKernels) {
  const std::vector<ExpShiftedKernel> kernels = exp_shifted_kernels();
  ASSERT_FALSE(kernels.empty());
  EXPECT_STREQ(kernels.front().name, "libm");
  float x = 1.0f, y = 0.0f;
  EXPECT_EQ(exp_shifted(&x, &y, 1, 1.0f), 1.0);
}

TEST(ExpShifted, UnderflowAndMaskedScoresGiveZero) {
  for (const ExpShiftedKernel& kernel : exp_shifted_kernels())
    for (int64_t n = 1; n <= 40; ++n) {
      SCOPED_TRACE(kernel.name);
      std::vector<float> row(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i)
        row[i] = i % 3 == 0   ? -std::numeric_limits<float>::infinity()
                 : i % 3 == 1 ? -88.0f - static_cast<float>(i)
                              : 0.0f;
      const double sum = kernel.run(row.data(), row.data(), n, 0.0f);  // in place
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(row[i], i % 3 == 2 ? 1.0f : 0.0f) << "n " << n << " i " << i;
      EXPECT_EQ(sum, static_cast<double>(n / 3)) << "n " << n;
    }
}

}  // namespace
}  // namespace zflow::cpu
