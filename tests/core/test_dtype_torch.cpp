// float32 narrowing against PyTorch's own results (tools/golden/make_dtype.py): random
// bit patterns, magnitudes across every exponent range, ties, subnormals, overflow,
// infinities and NaNs. Bits must be identical. And every float8 code widened to float32.
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

template <typename Bits, typename Convert>
void expect_same_bits(const io::SafetensorsFile& file, const std::string& name, Convert convert) {
  const Tensor input = file.tensor("input");
  const Tensor want = file.tensor(name);
  ASSERT_EQ(want.numel(), input.numel());
  const float* x = input.data<float>();
  const auto* w = static_cast<const Bits*>(want.raw());
  int mismatches = 0;
  for (int64_t i = 0; i < input.numel() && mismatches < 10; ++i) {
    const Bits got = convert(x[i]);
    if (got != w[i]) {
      ++mismatches;
      ADD_FAILURE() << name << ": input " << x[i] << " (index " << i << ") gave 0x" << std::hex
                    << +got << ", torch 0x" << +w[i];
    }
  }
}

TEST(DTypeTorch, NarrowingMatchesPyTorchBitForBit) {
  const auto file =
      io::SafetensorsFile::open(test::fixture("dtype/torch_float_conversions.safetensors"));
  expect_same_bits<uint16_t>(file, "bf16", f32_to_bf16_bits);
  expect_same_bits<uint16_t>(file, "f16", f32_to_f16_bits);
  expect_same_bits<uint8_t>(file, "f8_e4m3", f32_to_f8e4m3_bits);
  expect_same_bits<uint8_t>(file, "f8_e5m2", f32_to_f8e5m2_bits);
}

// All 256 codes of each float8 format widen to torch's float32, bit for bit (NaN codes to NaN:
// torch's NaN payload is not part of the format).
TEST(DTypeTorch, Float8CodesWidenAsPyTorch) {
  const auto file =
      io::SafetensorsFile::open(test::fixture("dtype/torch_float_conversions.safetensors"));
  using Widen = float (*)(uint8_t);
  const std::pair<const char*, Widen> formats[] = {{"f8_e4m3_codes_f32", f8e4m3_bits_to_f32},
                                                   {"f8_e5m2_codes_f32", f8e5m2_bits_to_f32}};
  for (const auto& [name, widen] : formats) {
    const Tensor want = file.tensor(name);
    ASSERT_EQ(want.numel(), 256) << name;
    for (int c = 0; c < 256; ++c) {
      const float w = want.data<float>()[c], got = widen(static_cast<uint8_t>(c));
      if (std::isnan(w))
        EXPECT_TRUE(std::isnan(got)) << name << " code " << c;
      else
        EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(w))
            << name << " code " << c << ": " << got << " vs torch " << w;
    }
  }
}

}  // namespace
}  // namespace zflow
