// The AVX-512 row scale and quantiser of the W8A8 activations against core/int8_rows.h's scalar
// definitions (themselves held to comfy-kitchen's by the int8 goldens): equal to the bit on rows
// of every length around the vector width, with values on rounding ties, at and past the clamp,
// zero rows, subnormals, infinities and NaNs.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/int8_rows_avx512.h"
#include "core/int8_rows.h"

namespace zflow::cpu {
namespace {

std::vector<std::vector<float>> rows() {
  std::mt19937 rng(29);
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int> code(-127, 126);
  std::vector<std::vector<float>> out;
  for (int64_t n : {1, 15, 16, 17, 100, 3840}) {
    std::vector<float> random(n), ties(n);
    for (float& v : random) v = normal(rng) * 3.0f;
    // Ties: the largest value, 127, makes the scale exactly 1, so every k + 0.5 lies halfway
    // between two codes.
    for (int64_t i = 0; i < n; ++i) ties[i] = static_cast<float>(code(rng)) + 0.5f;
    ties[0] = 127.0f;
    out.push_back(random);
    out.push_back(ties);
  }
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  out.push_back(std::vector<float>(33, 0.0f));
  out.push_back(std::vector<float>(20, 1e-40f));             // subnormal: scale 1e-30
  out.push_back({1.0f, -inf, 2.0f, 0.5f, inf, -3.0f});       // an infinite scale
  out.push_back({1.0f, 2.0f, nan, 4.0f, 5.0f, 6.0f, 7.0f});  // a NaN scale
  std::vector<float> late_nan(40, 1.0f);
  late_nan[39] = nan;
  out.push_back(late_nan);
  return out;
}

TEST(Int8Rows, Avx512EqualsTheScalarDefinitionToTheBit) {
  if (!int8_rows_avx512_available()) GTEST_SKIP() << "no AVX-512 here";
  for (const std::vector<float>& x : rows()) {
    const int64_t n = static_cast<int64_t>(x.size());
    const float scale = int8_row_scale(x.data(), n);
    const float fast_scale = int8_row_scale_avx512(x.data(), n);
    ASSERT_EQ(0, std::memcmp(&scale, &fast_scale, sizeof(float)))
        << "n=" << n << " scale " << scale << " vs " << fast_scale;
    std::vector<int8_t> want(x.size()), got(x.size());
    quantize_int8_row(x.data(), n, scale, want.data());
    quantize_int8_row_avx512(x.data(), n, scale, got.data());
    EXPECT_EQ(got, want) << "n=" << n << " x[0]=" << x[0];
  }
}

}  // namespace
}  // namespace zflow::cpu
