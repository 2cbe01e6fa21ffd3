// Elementwise ops, pad2d and nearest upsampling against their definitions. The
// data-movement ops must be exact; the transcendental ones are held to 1e-6 relative
// per element (float32 exp and division round to within a few ulp).
#include <gmock/gmock.h>

#include <array>
#include <cmath>

#include "backend/ops.h"
#include "op_test_util.h"
#include "test_util.h"

namespace zflow {
namespace {

// max over elements of |got - want| / max(|want|, 1e-30)
double elementwise_relative(const Tensor& got, const std::vector<double>& want) {
  const auto g = got.to_f32_vector();
  double worst = 0.0;
  for (size_t i = 0; i < want.size(); ++i)
    worst = std::max(worst, std::abs(g[i] - want[i]) / std::max(std::abs(want[i]), 1e-30));
  return worst;
}

TEST(Elementwise, MatchDefinitions) {
  const Tensor a = test::random_tensor({2, 3, 5, 7}, 41, -8.0f, 8.0f);
  const Tensor b = test::random_tensor({2, 3, 5, 7}, 42, -8.0f, 8.0f);
  const auto av = test::as_double(a), bv = test::as_double(b);
  std::vector<double> silu(av.size()), ex(av.size()), sum(av.size()), prod(av.size()),
      scaled(av.size()), shifted(av.size()), clamped(av.size()), leaky(av.size());
  for (size_t i = 0; i < av.size(); ++i) {
    silu[i] = av[i] / (1.0 + std::exp(-av[i]));
    ex[i] = std::exp(av[i]);
    sum[i] = static_cast<float>(av[i] + bv[i]);
    prod[i] = static_cast<float>(av[i] * bv[i]);
    scaled[i] = static_cast<float>(av[i] * 0.3611f);
    shifted[i] = static_cast<float>(av[i] + 0.1159f);
    clamped[i] = std::clamp(av[i], -1.0, 1.0);
    leaky[i] = av[i] >= 0.0 ? av[i] : static_cast<float>(av[i] * 0.2f);
  }
  EXPECT_LE(elementwise_relative(ops::silu(a), silu), 1e-6);
  EXPECT_LE(elementwise_relative(ops::exp(a), ex), 1e-6);
  EXPECT_EQ(elementwise_relative(ops::add(a, b), sum), 0.0);
  EXPECT_EQ(elementwise_relative(ops::mul(a, b), prod), 0.0);
  EXPECT_EQ(elementwise_relative(ops::mul_scalar(a, 0.3611f), scaled), 0.0);
  EXPECT_EQ(elementwise_relative(ops::add_scalar(a, 0.1159f), shifted), 0.0);
  EXPECT_EQ(elementwise_relative(ops::clamp(a, -1.0f, 1.0f), clamped), 0.0);
  EXPECT_EQ(elementwise_relative(ops::leaky_relu(a, 0.2f), leaky), 0.0);
}

TEST(Elementwise, PreluScalesNegativesByTheirChannelsSlope) {
  const Tensor x = test::random_tensor({2, 3, 5, 7}, 43, -4.0f, 4.0f);
  const Tensor slope = Tensor::from_f32({3}, std::array{0.25f, -0.5f, 2.0f}).to(DType::BF16);
  const auto xv = test::as_double(x);
  std::vector<double> want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const float s = std::array{0.25f, -0.5f, 2.0f}[i / 35 % 3];
    want[i] = xv[i] >= 0.0 ? xv[i] : static_cast<float>(xv[i] * s);
  }
  EXPECT_EQ(elementwise_relative(ops::prelu(x, slope), want), 0.0);
  EXPECT_THAT(test::error_of([&] { ops::prelu(x, Tensor::zeros({4}, DType::F32)); }),
              testing::HasSubstr("[prelu] slope"));
}

TEST(Pad2d, PlacesInputAndZeros) {
  const Tensor x = test::random_tensor({2, 3, 4, 5}, 51);
  const Tensor y = ops::pad2d(x, 1, 2, 0, 3);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 7, 8}));
  const auto xv = x.to_f32_vector(), yv = y.to_f32_vector();
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t r = 0; r < 7; ++r)
      for (int64_t c = 0; c < 8; ++c) {
        const bool inside = r < 4 && c >= 1 && c < 6;
        const float want = inside ? xv[(p * 4 + r) * 5 + c - 1] : 0.0f;
        ASSERT_EQ(yv[(p * 7 + r) * 8 + c], want) << p << " " << r << " " << c;
      }
}

TEST(UpsampleNearest2x, RepeatsEachPixel) {
  const Tensor x = test::random_tensor({2, 3, 3, 5}, 61);
  const Tensor y = ops::upsample_nearest2x(x);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 6, 10}));
  const auto xv = x.to_f32_vector(), yv = y.to_f32_vector();
  for (int64_t p = 0; p < 6; ++p)
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t c = 0; c < 10; ++c)
        ASSERT_EQ(yv[(p * 6 + r) * 10 + c], xv[(p * 3 + r / 2) * 5 + c / 2]);
}

}  // namespace
}  // namespace zflow
