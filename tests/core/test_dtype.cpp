// dtype conversions checked from first principles: every value of each small format
// round-trips through float32 exactly, and float32 inputs round to the nearest
// representable value with ties to even, found by brute force over the format.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "core/dtype.h"
#include "test_util.h"

namespace zflow {
namespace {

TEST(DType, NamesRoundTrip) {
  for (auto t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::F8_E4M3, DType::F8_E5M2,
                 DType::I64, DType::I32, DType::I16, DType::I8, DType::U64, DType::U32, DType::U16,
                 DType::U8, DType::Bool}) {
    EXPECT_EQ(dtype_from_name(dtype_name(t)), t);
  }
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::F8_E5M2), 1u);
  EXPECT_FALSE(dtype_from_name("F4").has_value());
}

// Every finite bit pattern of a small format widens to float32 and narrows back to itself.
TEST(DType, SmallFormatsRoundTripExactly) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    const float h = f16_bits_to_f32(static_cast<uint16_t>(b));
    if (!std::isnan(h)) {
      EXPECT_EQ(f32_to_f16_bits(h), b) << std::hex << b;
    }
    const float bf = bf16_bits_to_f32(static_cast<uint16_t>(b));
    if (!std::isnan(bf)) {
      EXPECT_EQ(f32_to_bf16_bits(bf), b) << std::hex << b;
    }
  }
  for (uint32_t b = 0; b < 0x100; ++b) {
    const float e4 = f8e4m3_bits_to_f32(static_cast<uint8_t>(b));
    if (!std::isnan(e4)) {
      EXPECT_EQ(f32_to_f8e4m3_bits(e4), b) << std::hex << b;
    }
    const float e5 = f8e5m2_bits_to_f32(static_cast<uint8_t>(b));
    if (!std::isnan(e5)) {
      EXPECT_EQ(f32_to_f8e5m2_bits(e5), b) << std::hex << b;
    }
  }
}

TEST(DType, KnownValues) {
  EXPECT_EQ(f16_bits_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(f16_bits_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16_bits_to_f32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(bf16_bits_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f8e4m3_bits_to_f32(0x7E), 448.0f);
  EXPECT_EQ(f8e4m3_bits_to_f32(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(f8e4m3_bits_to_f32(0x7F)));
  EXPECT_EQ(f8e5m2_bits_to_f32(0x7B), 57344.0f);
  EXPECT_TRUE(std::isinf(f8e5m2_bits_to_f32(0x7C)));
  // Overflow: e4m3fn has no infinity, so PyTorch saturates at 448; e5m2 and f16 give inf.
  EXPECT_EQ(f32_to_f8e4m3_bits(1e6f), 0x7E);
  EXPECT_EQ(f32_to_f8e4m3_bits(-1e6f), 0xFE);
  EXPECT_EQ(f32_to_f8e4m3_bits(std::numeric_limits<float>::infinity()), 0x7E);
  EXPECT_EQ(f32_to_f8e4m3_bits(464.0f), 0x7E);  // tie between 448 and 480: even is 448
  EXPECT_EQ(f32_to_f8e5m2_bits(1e6f), 0x7C);
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7C00);  // tie between 65504 and 65536: even is inf
  EXPECT_EQ(f32_to_f16_bits(65519.0f), 0x7BFF);
  EXPECT_TRUE(
      std::isnan(bf16_bits_to_f32(f32_to_bf16_bits(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(f32_to_f16_bits(-std::numeric_limits<float>::infinity()), 0xFC00);
}

// The nearest representable value, ties to the even code, by scanning all codes.
template <typename Widen>
uint32_t brute_force_nearest(float x, uint32_t codes, Widen widen) {
  uint32_t best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (uint32_t c = 0; c < codes; ++c) {
    const float v = widen(c);
    if (!std::isfinite(v)) continue;
    const double err = std::fabs(static_cast<double>(v) - static_cast<double>(x));
    // A tie is between two neighbouring codes, one of them even: keep the even one.
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return best;
}

TEST(DType, Float8RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> log_mag(-12.0f, 8.5f);
  for (int i = 0; i < 4000; ++i) {
    float x = std::exp2(log_mag(rng)) * (rng() & 1 ? -1.0f : 1.0f);
    if (i % 3 == 0) {  // exact midpoints between neighbouring codes stress the tie rule
      const uint8_t c = static_cast<uint8_t>(rng() & 0x7D);
      x = 0.5f * (f8e4m3_bits_to_f32(c) + f8e4m3_bits_to_f32(c + 1));
    }
    if (std::fabs(x) < 448.0f) {
      const uint32_t want = brute_force_nearest(
          x, 256, [](uint32_t c) { return f8e4m3_bits_to_f32(static_cast<uint8_t>(c)); });
      EXPECT_EQ(f8e4m3_bits_to_f32(f32_to_f8e4m3_bits(x)),
                f8e4m3_bits_to_f32(static_cast<uint8_t>(want)))
          << x;
    }
    if (std::fabs(x) < 57344.0f) {
      const uint32_t want = brute_force_nearest(
          x, 256, [](uint32_t c) { return f8e5m2_bits_to_f32(static_cast<uint8_t>(c)); });
      EXPECT_EQ(f8e5m2_bits_to_f32(f32_to_f8e5m2_bits(x)),
                f8e5m2_bits_to_f32(static_cast<uint8_t>(want)))
          << x;
    }
  }
}

TEST(DType, ConvertBetweenIntegersAndFloats) {
  const float src[] = {-2.7f, -0.5f, 0.0f, 0.5f, 3.9f};
  int32_t ints[5];
  convert(src, DType::F32, ints, DType::I32, 5);
  EXPECT_EQ(ints[0], -2);  // truncation toward zero, as a C++ / PyTorch cast
  EXPECT_EQ(ints[4], 3);
  uint8_t bools[5];
  convert(src, DType::F32, bools, DType::Bool, 5);
  EXPECT_EQ(bools[1], 1);
  EXPECT_EQ(bools[2], 0);
  const int64_t big[] = {int64_t{1} << 40, -3};
  int64_t back[2];
  convert(big, DType::I64, back, DType::I64, 2);
  EXPECT_EQ(back[0], int64_t{1} << 40);
}

}  // namespace
}  // namespace zflow
