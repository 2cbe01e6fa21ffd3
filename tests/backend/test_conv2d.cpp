// conv2d against the definition written as loops in double:
//   out[n][co][r][c] = b[co] + sum_{ci,i,j} w[co][ci][i][j] * x[n][ci][r*s + i - pt][c*s + j - pl]
// Tolerance 2e-6 of the output scale for float32 and for 16-bit weights (the reference
// uses the same widened 16-bit values, so only float32 accumulation order differs; sums
// of a few hundred products lose ~1e-7 relative).
#include <cmath>
#include <limits>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"
#include "test_util.h"

namespace zflow {
namespace {

std::vector<double> conv_reference(const Tensor& x, const Tensor& w, const Tensor& b, int s,
                                   ops::Padding2d p) {
  const auto xv = test::as_double(x), wv = test::as_double(w), bv = test::as_double(b);
  const int64_t batch = x.size(0), cin = x.size(1), h = x.size(2), wd = x.size(3);
  const int64_t cout = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t oh = (h + p.top + p.bottom - kh) / s + 1, ow = (wd + p.left + p.right - kw) / s + 1;
  std::vector<double> out(static_cast<size_t>(batch * cout * oh * ow));
  for (int64_t n = 0; n < batch; ++n)
    for (int64_t co = 0; co < cout; ++co)
      for (int64_t r = 0; r < oh; ++r)
        for (int64_t c = 0; c < ow; ++c) {
          double acc = bv.empty() ? 0.0 : bv[co];
          for (int64_t ci = 0; ci < cin; ++ci)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t ih = r * s + i - p.top, iw = c * s + j - p.left;
                if (ih < 0 || ih >= h || iw < 0 || iw >= wd) continue;
                acc += wv[((co * cin + ci) * kh + i) * kw + j] *
                       xv[((n * cin + ci) * h + ih) * wd + iw];
              }
          out[((n * cout + co) * oh + r) * ow + c] = acc;
        }
  return out;
}

struct ConvCase {
  Shape x, w;
  int stride;
  ops::Padding2d pad;
  bool bias;
};

void check_conv(const ConvCase& cc, DType wdtype, uint32_t seed) {
  const Tensor x = test::random_tensor(cc.x, seed);
  const Tensor w = test::random_tensor(cc.w, seed + 1).to(wdtype);
  const Tensor b = cc.bias ? test::random_tensor({cc.w[0]}, seed + 2) : Tensor{};
  const Tensor y = ops::conv2d(x, w, b, cc.stride, cc.pad);
  const auto want = conv_reference(x, w, b, cc.stride, cc.pad);
  EXPECT_LE(test::relative_error(y, want), 2e-6)
      << "x " << shape_str(cc.x) << " w " << shape_str(cc.w) << " " << dtype_name(wdtype);
}

TEST(Conv2d, MatchesDefinitionOnOddShapes) {
  const std::vector<ConvCase> cases = {
      {{2, 3, 7, 11}, {5, 3, 3, 3}, 1, ops::Padding2d::uniform(1), true},    // conv_in-like
      {{2, 6, 9, 13}, {4, 6, 1, 1}, 1, {}, true},                            // 1x1 shortcut
      {{1, 5, 10, 7}, {3, 5, 3, 3}, 2, {0, 1, 0, 1}, true},                  // VAE downsample
      {{2, 4, 9, 6}, {7, 4, 3, 3}, 2, ops::Padding2d::uniform(1), false},    // odd stride-2
      {{1, 17, 5, 9}, {33, 17, 3, 3}, 1, ops::Padding2d::uniform(1), true},  // channels near 16/32
      {{1, 2, 6, 8}, {3, 2, 2, 4}, 3, {2, 0, 1, 3}, true},                   // asymmetric all round
  };
  uint32_t seed = 1;
  for (const auto& cc : cases) {
    for (DType t : {DType::F32, DType::BF16, DType::F16}) check_conv(cc, t, seed += 10);
  }
}

// 64 channels x 130 x 130 needs 36 MB of columns: more than the 32 MB scratch, so the
// kernel works in two chunks of output rows, and the seam must not show.
TEST(Conv2d, ChunkedOutputRowsMatch) {
  check_conv({{1, 64, 130, 130}, {3, 64, 3, 3}, 1, ops::Padding2d::uniform(1), true}, DType::BF16,
             7);
}

// 1024 x 1100 pixels of a 1x1 conv: 8.8 MB of columns per input channel, so four channels
// overflow the 32 MB scratch and the pointwise conv too works in chunks.
TEST(Conv2d, ChunkedPointwiseMatches) {
  check_conv({{1, 4, 1024, 1100}, {8, 4, 1, 1}, 1, {}, true}, DType::F32, 9);
}

// Under MatmulPrecision::Bfloat16, on a processor with the bfloat16-pair kernel, a bf16 weight's
// columns are written in bfloat16, rounded as gemm rounds a Linear's activations: against the
// definition on x rounded to bfloat16 (products of two bfloat16 values are exact in float32)
// only float32 summation order remains, so the float32 tolerance holds. Elsewhere the columns
// stay float32 and x is compared as it is. A NaN in x reaches the outputs that read it.
TEST(Conv2d, Bfloat16ColumnsRoundOnlyTheInput) {
  const test::ScopedMatmulPrecision bf16(cpu::MatmulPrecision::Bfloat16);
  const bool pairs = cpu::gemm_default_isa(DType::BF16) == cpu::GemmIsa::Avx512Bf16;
  const std::vector<ConvCase> cases = {
      {{2, 17, 9, 13}, {33, 17, 3, 3}, 1, ops::Padding2d::uniform(1), true},
      {{1, 5, 10, 7}, {3, 5, 3, 3}, 2, {0, 1, 0, 1}, true},
      {{1, 6, 9, 13}, {4, 6, 1, 1}, 1, {}, false},
      {{1, 64, 130, 130}, {5, 64, 3, 3}, 1, ops::Padding2d::uniform(1), true},  // two chunks
  };
  uint32_t seed = 101;
  for (const ConvCase& cc : cases) {
    const Tensor x = test::random_tensor(cc.x, seed++, -3.0f, 3.0f);
    const Tensor w = test::random_tensor(cc.w, seed++).to(DType::BF16);
    const Tensor b = cc.bias ? test::random_tensor({cc.w[0]}, seed++) : Tensor{};
    const Tensor seen = pairs ? x.to(DType::BF16).to(DType::F32) : x;
    EXPECT_LE(test::relative_error(ops::conv2d(x, w, b, cc.stride, cc.pad),
                                   conv_reference(seen, w, b, cc.stride, cc.pad)),
              2e-6)
        << "x " << shape_str(cc.x) << " w " << shape_str(cc.w) << " pairs " << pairs;
  }
  Tensor x = test::random_tensor({1, 2, 5, 5}, 7);
  x.data<float>()[12] = std::numeric_limits<float>::quiet_NaN();  // channel 0, pixel (2, 2)
  const std::vector<float> y =
      ops::conv2d(x, test::random_tensor({1, 2, 3, 3}, 8).to(DType::BF16), {}, 1, 1)
          .to_f32_vector();
  for (int64_t r = 0; r < 5; ++r)
    for (int64_t c = 0; c < 5; ++c)
      EXPECT_EQ(std::isnan(y[r * 5 + c]), std::abs(r - 2) <= 1 && std::abs(c - 2) <= 1)
          << r << " " << c;
}

TEST(Conv2d, RejectsMismatchedChannelsAndCudaTensors) {
  const Tensor x = test::random_tensor({1, 3, 4, 4}, 1);
  const Tensor w = test::random_tensor({2, 4, 3, 3}, 2);
  try {
    ops::conv2d(x, w, {}, 1, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(
        std::string(e.what()).find("[conv2d] w has shape [2, 4, 3, 3], expected [2, 3, 3, 3]"),
        std::string::npos)
        << e.what();
  }
  try {
    ops::conv2d(test::fake_cuda(x), test::random_tensor({2, 3, 3, 3}, 3), {}, 1, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "[conv2d] inputs are on different devices (cuda and cpu); move them with "
                 "Tensor::to(Device)");
  }
}

}  // namespace
}  // namespace zflow
