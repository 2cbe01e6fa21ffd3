// Tensor views and copies checked against index arithmetic done by hand.
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/tensor.h"
#include "test_util.h"

namespace zflow {
namespace {

Tensor iota(Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), DType::F32);
  std::iota(t.data<float>(), t.data<float>() + t.numel(), 0.0f);
  return t;
}

TEST(Tensor, ContiguousBasics) {
  Tensor t = iota({2, 3, 4});
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.strides(), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.nbytes(), 96u);
  EXPECT_THROW(t.size(3), Error);
  EXPECT_THROW(t.data<int32_t>(), Error);
}

TEST(Tensor, ViewInfersOneDim) {
  Tensor v = iota({2, 3, 4}).view({6, -1});
  EXPECT_EQ(v.shape(), (Shape{6, 4}));
  EXPECT_EQ(v.data<float>()[5], 5.0f);
  EXPECT_THROW(iota({2, 3}).view({4, 2}), Error);
}

TEST(Tensor, SliceSelectPermuteShareStorage) {
  Tensor t = iota({2, 3, 4});
  Tensor s = t.slice(1, 1, 3);  // [2, 2, 4], element (b, i, j) = b*12 + (i+1)*4 + j
  EXPECT_FALSE(s.is_contiguous());
  std::vector<float> got = s.to_f32_vector();
  ASSERT_EQ(got.size(), 16u);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 4; ++j) EXPECT_EQ(got[b * 8 + i * 4 + j], b * 12 + (i + 1) * 4 + j);

  Tensor p = t.permute({2, 0, 1});  // (j, b, i) = b*12 + i*4 + j
  std::vector<float> pv = p.contiguous().to_f32_vector();
  for (int j = 0; j < 4; ++j)
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 3; ++i) EXPECT_EQ(pv[j * 6 + b * 3 + i], b * 12 + i * 4 + j);

  Tensor sel = t.select(0, 1);
  EXPECT_EQ(sel.shape(), (Shape{3, 4}));
  EXPECT_EQ(sel.data<float>()[0], 12.0f);
  sel.data<float>()[0] = -1.0f;  // a view writes through to the original
  EXPECT_EQ(t.data<float>()[12], -1.0f);
  EXPECT_THROW(t.slice(1, 2, 4), Error);
}

TEST(Tensor, UnsqueezeAndConvert) {
  Tensor t = iota({3, 2}).unsqueeze(1);
  EXPECT_EQ(t.shape(), (Shape{3, 1, 2}));
  Tensor h = t.to(DType::BF16);
  EXPECT_EQ(h.dtype(), DType::BF16);
  EXPECT_EQ(h.to_f32_vector(), (std::vector<float>{0, 1, 2, 3, 4, 5}));
  Tensor z = Tensor::zeros({0, 5}, DType::F16);
  EXPECT_EQ(z.numel(), 0);
  EXPECT_TRUE(z.to_f32_vector().empty());
}

TEST(Tensor, OverChecksStorageBounds) {
  auto storage = Storage::allocate_host(16);
  EXPECT_NO_THROW(Tensor::over(storage, 8, {2}, DType::F32));
  EXPECT_THROW(Tensor::over(storage, 12, {2}, DType::F32), Error);
}

// A scaled float8 tensor's values are stored * scale: views and same-dtype copies keep the
// scale, conversions apply it, and nothing copies into a scale it does not have.
TEST(Tensor, Float8ScaleTravelsWithTheValues) {
  const Tensor codes =
      Tensor::from_f32({2, 3}, std::vector<float>{1, -2, 0.5f, 448, 0, -0.25f}).to(DType::F8_E4M3);
  const Tensor w = codes.with_scale(0.5f);
  EXPECT_EQ(codes.scale(), 1.0f);
  EXPECT_EQ(w.to_f32_vector(), (std::vector<float>{0.5f, -1, 0.25f, 224, 0, -0.125f}));
  EXPECT_EQ(w.slice(0, 1, 2).scale(), 0.5f);
  EXPECT_EQ(w.view({3, 2}).scale(), 0.5f);
  EXPECT_EQ(w.permute({1, 0}).to_f32_vector(),
            (std::vector<float>{0.5f, 224, -1, 0, 0.25f, -0.125f}));
  const Tensor copy = w.clone();
  EXPECT_NE(copy.raw(), w.raw());
  EXPECT_EQ(copy.scale(), 0.5f);
  EXPECT_EQ(copy.to(DType::BF16).to_f32_vector(), w.to_f32_vector());
  EXPECT_EQ(w.to(DType::F8_E4M3).scale(), 0.5f);  // same dtype: the same tensor
  Tensor unscaled = Tensor::empty({2, 3}, DType::F32);
  unscaled.copy_from(w);
  EXPECT_EQ(unscaled.to_f32_vector(), w.to_f32_vector());
  Tensor other = Tensor::zeros({2, 3}, DType::F8_E4M3).with_scale(2.0f);
  EXPECT_THROW(other.copy_from(w), Error);
  EXPECT_THROW(Tensor::zeros({2}, DType::BF16).with_scale(2.0f), Error);
  EXPECT_THROW(codes.with_scale(NAN), Error);
}

// Int8 rows with scales (ComfyUI's int8 weights): values are code * row scale (no rotation
// here: group 0), kept by slices of rows and copies, dequantised by conversions, and every view
// that would mix rows and scales is refused.
TEST(Tensor, Int8RowScales) {
  Tensor codes = Tensor::empty({3, 4}, DType::I8);
  for (int i = 0; i < 12; ++i) static_cast<int8_t*>(codes.raw())[i] = static_cast<int8_t>(i - 6);
  const std::vector<float> scales = {0.5f, 2.0f, -1.0f};
  const Tensor w = codes.with_row_scales(scales, 0);
  const std::vector<float> values = w.to_f32_vector();
  for (int i = 0; i < 12; ++i) EXPECT_EQ(values[i], static_cast<float>(i - 6) * scales[i / 4]) << i;
  const Tensor rows = w.slice(0, 1, 3);
  ASSERT_EQ(rows.row_scales().size(), 2u);
  EXPECT_EQ(rows.row_scales()[0], 2.0f);
  EXPECT_EQ(rows.to(DType::BF16).to_f32_vector()[0], -4.0f);  // code -2 times 2
  const Tensor copy = w.clone();
  EXPECT_NE(copy.raw(), w.raw());
  EXPECT_EQ(copy.to_f32_vector(), values);
  EXPECT_THROW(w.view({12}), Error);
  EXPECT_THROW(w.slice(1, 0, 2), Error);
  EXPECT_THROW(w.permute({1, 0}), Error);
  EXPECT_THROW(Tensor::empty({3, 4}, DType::I32).copy_from(w), Error);  // not a float dtype
  EXPECT_THROW(Tensor::zeros({3, 4}, DType::F32).with_row_scales({1, 1, 1}, 0), Error);
  EXPECT_THROW(codes.with_row_scales({1, 1}, 0), Error);
  EXPECT_THROW(codes.with_row_scales({1, 1, 1}, 16), Error);  // 16 does not divide 4
}

}  // namespace
}  // namespace zflow
