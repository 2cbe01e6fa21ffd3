// ConvRot's rotation (core/hadamard.h) against its definition: the Kronecker powers of H4,
// normalised, built here entry by entry, and applied as a plain matrix product.
#include "core/hadamard.h"

#include <random>
#include <vector>

#include "test_util.h"

namespace zflow {
namespace {

// Entry (i, j) of H4 ⊗ ... ⊗ H4 (unnormalised): the product of H4's entries over the base-4
// digits of i and j. H4 is +1 except -1 on its anti-diagonal (digit i + digit j = 3).
double kronecker_entry(int64_t i, int64_t j, int64_t group) {
  double v = 1.0;
  for (int64_t size = group; size > 1; size /= 4, i /= 4, j /= 4)
    if (i % 4 + j % 4 == 3) v = -v;
  return v / std::sqrt(static_cast<double>(group));
}

TEST(Hadamard, GroupSizesArePowersOfFour) {
  for (int64_t g : {4, 16, 64, 256, 1024, 4096}) EXPECT_TRUE(is_hadamard_group(g)) << g;
  for (int64_t g : {0, 1, 2, 8, 32, 128, 512, 12, -4}) EXPECT_FALSE(is_hadamard_group(g)) << g;
}

TEST(Hadamard, EqualsTheKroneckerPowersOfH4) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  for (int64_t group : {4, 16, 64, 256}) {
    const int64_t n = 3 * group;  // three groups, each rotated on its own
    std::vector<float> x(n);
    for (float& v : x) v = normal(gen);
    std::vector<float> got = x;
    rotate_hadamard_groups(got.data(), n, group);
    double worst = 0.0;
    for (int64_t g0 = 0; g0 < n; g0 += group)
      for (int64_t j = 0; j < group; ++j) {
        double want = 0.0;  // (x · H)[j] over this group
        for (int64_t i = 0; i < group; ++i) want += x[g0 + i] * kronecker_entry(i, j, group);
        worst = std::max(worst, std::abs(got[g0 + j] - want));
      }
    // float32 butterflies against a float64 product of values of size ~1: log4(group) rounding
    // steps of 2^-24 relative on sums of size ~2.
    EXPECT_LE(worst, 1e-5) << "group " << group;
  }
}

TEST(Hadamard, IsItsOwnInverse) {
  std::mt19937 gen(11);
  std::normal_distribution<float> normal;
  std::vector<float> x(512);
  for (float& v : x) v = normal(gen);
  std::vector<float> y = x;
  rotate_hadamard_groups(y.data(), 512, 256);
  rotate_hadamard_groups(y.data(), 512, 256);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-5) << i;
}

TEST(Hadamard, RefusesGroupsThatDoNotFit) {
  std::vector<float> x(48);
  EXPECT_NE(test::error_of([&] { rotate_hadamard_groups(x.data(), 48, 32); }).find("32"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { rotate_hadamard_groups(x.data(), 48, 64); }).find("48"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow
