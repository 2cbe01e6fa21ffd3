// SPAN upscalers against spandrel 0.4.2 on tiny random networks (make_span.py): a 4x one that
// normalises its input (float32 safetensors) and a 2x one with the `no_norm` buffer (a bf16
// state dict saved by torch.save), both on a 13 x 11 picture, found by load_upscaler from their
// names. Their `eval_conv` tensors hold noise, so a model that read them instead of folding the
// training convs fails. Tolerance: 1e-4 of the output's scale, as the other network goldens
// (zflow folds in double, spandrel in float32).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "models/span.h"
#include "models/upscaler.h"
#include "test_util.h"

namespace zflow::models {
namespace {

Tensor golden(const std::string& name) {
  return io::SafetensorsFile::open(test::fixture("span/span_io.safetensors"))
      .tensor(name)
      .to(DType::F32);
}

TEST(Span, FourTimesWithInputNormEqualsSpandrel) {
  const std::unique_ptr<Upscaler> model = load_upscaler(test::fixture("span/span_x4.safetensors"));
  const auto* span = dynamic_cast<const Span*>(model.get());
  ASSERT_NE(span, nullptr) << model->summary();
  EXPECT_TRUE(span->config().norm);
  EXPECT_EQ(span->config().features, 4);
  EXPECT_EQ(model->summary(), "4x SPAN, 4 features");
  const Tensor out = model->upscale(golden("image"));
  EXPECT_EQ(out.shape(), (Shape{1, 3, 44, 52}));
  EXPECT_LE(test::relative_error(out, golden("x4_output")), 1e-4);
}

TEST(Span, TwoTimesWithoutNormFromAPthEqualsSpandrel) {
  const std::unique_ptr<Upscaler> model = load_upscaler(test::fixture("span/span_x2_no_norm.pth"));
  EXPECT_EQ(model->scale(), 2);
  EXPECT_EQ(model->summary(), "2x SPAN, 4 features, no input norm");
  EXPECT_LE(test::relative_error(model->upscale(golden("image")), golden("x2_output")), 1e-4);
}

TEST(Span, FlopsCountTheFoldedConvs) {
  // 4 features, 4x: conv_1 (3 -> 4), 18 block convs and conv_2 (4 -> 4), upsampler (4 -> 48),
  // all 3x3; conv_cat 16 -> 4, 1x1.
  const SpanConfig c{3, 3, 4, 4, true};
  const double per_pixel = 2.0 * (9 * (3 * 4 + 19 * 16 + 4 * 48) + 16 * 4);
  EXPECT_DOUBLE_EQ(Span(c, random_weights(span_parameters(c), DType::F32, 1)).flops(10, 20),
                   200.0 * per_pixel);
}

TEST(Span, ErrorsNameTheFileAndTensor) {
  io::WeightStore weights = io::WeightStore::open(test::fixture("span/span_x4.safetensors"));
  weights.remove("block_3.c2_r.conv.1.bias");
  EXPECT_THAT(test::error_of([&] { Span(SpanConfig::infer_from_weights(weights), weights); }),
              testing::HasSubstr("block_3.c2_r.conv.1.bias"));
  weights = io::WeightStore::open(test::fixture("span/span_x4.safetensors"));
  weights.remove("upsampler.0.weight");
  weights.add("upsampler.0.weight", Tensor::zeros({50, 4, 3, 3}, DType::F32));
  EXPECT_THAT(test::error_of([&] { SpanConfig::infer_from_weights(weights); }),
              testing::HasSubstr("upsampler.0's 50 outputs"));
}

}  // namespace
}  // namespace zflow::models
