// GGML block (de)quantisation against gguf-py 0.19 (tools/golden/make_gguf.py): dequantised
// values and legacy-type quantised bytes must match exactly (the same float32 operations in
// the same order, so no tolerance). The k-quant quantisers, which gguf-py lacks, are checked
// by their round-trip error against the bound a uniform quantiser of that many bits gives.
#include <cmath>
#include <cstring>
#include <random>

#include "core/error.h"
#include "core/quant_blocks.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

const io::SafetensorsFile& fixture() {
  static const io::SafetensorsFile f =
      io::SafetensorsFile::open(test::fixture("gguf/gguf_blocks_every_type_values.safetensors"));
  return f;
}

std::vector<uint8_t> bytes_of(const Tensor& t) {
  const auto* p = static_cast<const uint8_t*>(t.raw());
  return {p, p + t.nbytes()};
}

std::vector<float> dequantize(DType type, const std::vector<uint8_t>& blocks) {
  const int64_t n =
      static_cast<int64_t>(blocks.size() / dtype_block_bytes(type)) * dtype_block_size(type);
  std::vector<float> out(n);
  dequantize_blocks(type, blocks.data(), out.data(), n);
  return out;
}

// Bitwise float equality (so -0.0 vs 0.0 and NaN payloads count).
void expect_same_floats(const std::vector<float>& got, const Tensor& want,
                        const std::string& what) {
  const std::vector<float> w = want.to_f32_vector();
  ASSERT_EQ(got.size(), w.size()) << what;
  size_t mismatches = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    if (std::memcmp(&got[i], &w[i], 4) != 0 && mismatches++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << got[i] << ", gguf-py " << w[i];
  }
  EXPECT_EQ(mismatches, 0u) << what;
}

constexpr DType kAll[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                          DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
constexpr DType kGgufPyQuantises[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                      DType::Q8_0};

TEST(QuantBlocks, DequantiseRandomBlocksAsGgufPy) {
  for (DType t : kAll) {
    const std::string name(dtype_name(t));
    const auto blocks = bytes_of(fixture().tensor(name + ".random_blocks"));
    expect_same_floats(dequantize(t, blocks), fixture().tensor(name + ".random_values"), name);
  }
}

TEST(QuantBlocks, QuantiseLegacyTypesAsGgufPy) {
  for (DType t : kGgufPyQuantises) {
    const std::string name(dtype_name(t));
    const std::vector<float> source = fixture().tensor(name + ".source").to_f32_vector();
    const auto want = bytes_of(fixture().tensor(name + ".quantized"));
    std::vector<uint8_t> got(want.size());
    quantize_blocks(t, source.data(), got.data(), static_cast<int64_t>(source.size()));
    size_t first_diff = got.size();
    for (size_t i = 0; i < got.size() && first_diff == got.size(); ++i)
      if (got[i] != want[i]) first_diff = i;
    EXPECT_EQ(first_diff, got.size())
        << name << ": byte " << first_diff << " of block " << first_diff / dtype_block_bytes(t)
        << " differs from gguf-py";
    expect_same_floats(dequantize(t, want), fixture().tensor(name + ".dequantized"),
                       name + " dequantized");
  }
}

// Root-mean-square round-trip error over Gaussian rows whose scale changes row to row,
// relative to the rows' RMS. A uniform quantiser with step s has RMS error s / sqrt(12);
// for b bits over a sub-block of 32 (16) Gaussian values the range is about 4.5 (4) sigma,
// so Q4_K ~ 4.5 / 15 / sqrt(12) = 0.087, Q5_K ~ 0.042, Q6_K (signed, +-2 sigma over 32 steps)
// ~ 0.018, Q8_0 (signed, max |x| of 32 values ~ 2.5-3 sigma over 127 steps) ~ 0.007. The
// bounds leave about 20% over these; a wrong bit position or a stale scale gives errors of
// order 1.
TEST(QuantBlocks, KQuantRoundTripErrorIsThatOfItsBits) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> x(256 * 64);
  for (size_t row = 0; row < 64; ++row) {
    const float scale = std::pow(10.0f, static_cast<float>(row % 5) - 2.0f);
    for (size_t j = 0; j < 256; ++j) x[row * 256 + j] = normal(rng) * scale;
  }
  const std::pair<DType, double> bounds[] = {
      {DType::Q4_K, 0.10}, {DType::Q5_K, 0.05}, {DType::Q6_K, 0.022}, {DType::Q8_0, 0.0085}};
  for (const auto& [t, bound] : bounds) {
    std::vector<uint8_t> q(dtype_nbytes(t, static_cast<int64_t>(x.size())));
    quantize_blocks(t, x.data(), q.data(), static_cast<int64_t>(x.size()));
    const std::vector<float> y = dequantize(t, q);
    double worst = 0.0;
    for (size_t row = 0; row < 64; ++row) {
      double err = 0.0, ref = 0.0;
      for (size_t j = row * 256; j < (row + 1) * 256; ++j) {
        err += (y[j] - x[j]) * static_cast<double>(y[j] - x[j]);
        ref += x[j] * static_cast<double>(x[j]);
      }
      worst = std::max(worst, std::sqrt(err / ref));
    }
    EXPECT_LT(worst, bound) << dtype_name(t);
  }
}

TEST(QuantBlocks, DTypeArithmetic) {
  EXPECT_TRUE(dtype_is_quantized(DType::Q4_K));
  EXPECT_FALSE(dtype_is_quantized(DType::BF16));
  EXPECT_EQ(dtype_block_size(DType::Q8_0), 32);
  EXPECT_EQ(dtype_block_bytes(DType::Q6_K), 210u);
  EXPECT_EQ(dtype_nbytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(dtype_nbytes(DType::F16, 3), 6u);
  EXPECT_THROW(dtype_nbytes(DType::Q4_K, 100), Error);
  EXPECT_THROW(dtype_size(DType::Q8_0), Error);
  EXPECT_FALSE(can_quantize(DType::Q2_K));
  EXPECT_THROW(quantize_blocks(DType::Q3_K, nullptr, nullptr, 256), Error);
}

// The GPU kernels read blocks through quant::BlockKind: its sizes must be the DType's.
TEST(QuantBlocks, BlockKindsAgreeWithTheirDTypes) {
  for (DType type : kAll) {
    const quant::BlockKind kind = block_kind(type);
    EXPECT_EQ(quant::block_values(kind), dtype_block_size(type)) << dtype_name(type);
    EXPECT_EQ(static_cast<size_t>(quant::block_bytes(kind)), dtype_block_bytes(type))
        << dtype_name(type);
  }
  EXPECT_THROW(block_kind(DType::BF16), Error);
}

// A quantised tensor is a Tensor: byte sizes, row slices and conversion to float32 follow
// its blocks.
TEST(QuantBlocks, TensorsOfBlocks) {
  std::vector<float> values(4 * 64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.1f * i);
  const Tensor x = Tensor::from_f32({4, 64}, values);
  const Tensor q = x.to(DType::Q8_0);
  EXPECT_EQ(q.nbytes(), 4u * 2 * 34);
  const Tensor back = q.to(DType::F32);
  EXPECT_LT(test::relative_error(back, x), 1.0 / 127);  // half a step of 1/127 of the max
  const Tensor rows = q.slice(0, 1, 3).to(DType::F32);
  EXPECT_EQ(rows.to_f32_vector(), back.slice(0, 1, 3).contiguous().to_f32_vector());
  EXPECT_THROW(q.slice(1, 0, 16), Error);              // half a block
  EXPECT_NO_THROW(q.slice(1, 32, 64).to(DType::F32));  // whole blocks
  EXPECT_THROW(Tensor::empty({2, 48}, DType::Q4_0), Error);
}

// A tensor large enough to be quantised and dequantised by several threads gives, block for
// block, the bytes and floats of the serial definition (quantize_blocks, dequantize_blocks).
TEST(QuantBlocks, LargeTensorsConvertAsTheSerialDefinition) {
  const int64_t rows = 96, cols = 4096;  // 393216 values: past the threshold for threads
  std::vector<float> values(static_cast<size_t>(rows * cols));
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : values) v = normal(rng);
  const Tensor x = Tensor::from_f32({rows, cols}, values);
  for (DType type : {DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
    const Tensor q = x.to(type);
    std::vector<uint8_t> want(dtype_nbytes(type, rows * cols));
    quantize_blocks(type, values.data(), want.data(), rows * cols);
    ASSERT_EQ(q.nbytes(), want.size());
    EXPECT_EQ(std::memcmp(q.raw(), want.data(), want.size()), 0) << dtype_name(type);
    std::vector<float> back(values.size());
    dequantize_blocks(type, want.data(), back.data(), rows * cols);
    EXPECT_EQ(q.to(DType::F32).to_f32_vector(), back) << dtype_name(type);
  }
}

}  // namespace
}  // namespace zflow
