// Real-ESRGAN's compact upscaler against spandrel 0.4.2 on tiny random networks
// (make_compact_upscaler.py): a 4x one as Real-ESRGAN publishes them (a torch.save .pth nesting
// the weights under `params`) and a 2x one in bf16 safetensors, both on a 13 x 11 picture, found
// by load_upscaler from their names alone. Tolerance: fp32 against fp32 (the stored weights are
// exact in float32), 1e-4 of the output's scale, as the other network goldens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "models/srvgg_compact.h"
#include "models/upscaler.h"
#include "test_util.h"

namespace zflow::models {
namespace {

Tensor golden(const std::string& name) {
  return io::SafetensorsFile::open(test::fixture("compact_upscaler/compact_io.safetensors"))
      .tensor(name)
      .to(DType::F32);
}

std::filesystem::path network(const std::string& file) {
  return test::fixture("compact_upscaler/" + file);
}

TEST(SrvggCompact, FourTimesFromRealEsrgansPthEqualsSpandrel) {
  const std::unique_ptr<Upscaler> model = load_upscaler(network("compact_x4_params.pth"));
  const auto* compact = dynamic_cast<const SrvggCompact*>(model.get());
  ASSERT_NE(compact, nullptr) << model->summary();
  EXPECT_EQ(compact->config().features, 8);
  EXPECT_EQ(compact->config().convs, 2);
  EXPECT_EQ(model->scale(), 4);
  EXPECT_EQ(model->summary(), "4x Compact, 2 convs, 8 features");
  const Tensor out = model->upscale(golden("image"));
  EXPECT_EQ(out.shape(), (Shape{1, 3, 44, 52}));
  EXPECT_LE(test::relative_error(out, golden("x4_output")), 1e-4);
}

TEST(SrvggCompact, TwoTimesInBf16EqualsSpandrel) {
  const std::unique_ptr<Upscaler> model = load_upscaler(network("compact_x2.safetensors"));
  EXPECT_EQ(model->scale(), 2);
  EXPECT_EQ(model->in_channels(), 3);
  EXPECT_EQ(model->out_channels(), 3);
  EXPECT_LE(test::relative_error(model->upscale(golden("image")), golden("x2_output")), 1e-4);
}

TEST(SrvggCompact, FlopsCountEveryConvOnTheInputGrid) {
  // 3 -> 8 features, two 8 -> 8 convs, 8 -> 3 * 16: 2 x 9 multiply-adds per weight and pixel.
  const CompactConfig c{3, 3, 8, 2, 4};
  const double per_pixel = 2.0 * 9 * (3 * 8 + 2 * 8 * 8 + 8 * 48);
  EXPECT_DOUBLE_EQ(
      SrvggCompact(c, random_weights(compact_parameters(c), DType::F32, 1)).flops(10, 20),
      200.0 * per_pixel);
}

TEST(SrvggCompact, ErrorsNameTheFileAndTensor) {
  io::WeightStore weights = io::WeightStore::open(network("compact_x2.safetensors"));
  weights.remove("body.4.weight");
  EXPECT_THAT(test::error_of([&] { CompactConfig::infer_from_weights(weights); }),
              testing::HasSubstr("body.0 .. body.4 do not form a Compact network"));
  weights = io::WeightStore::open(network("compact_x2.safetensors"));
  weights.remove("body.3.weight");
  EXPECT_THAT(
      test::error_of([&] { SrvggCompact(CompactConfig::infer_from_weights(weights), weights); }),
      testing::HasSubstr("body.3.weight"));
  weights = io::WeightStore::open(network("compact_x2.safetensors"));
  weights.remove("body.4.weight");
  weights.add("body.4.weight", Tensor::zeros({16, 8, 3, 3}, DType::F32));
  EXPECT_THAT(test::error_of([&] { CompactConfig::infer_from_weights(weights); }),
              testing::HasSubstr("3 input channels cannot be added to 4 output channels"));
  weights = io::WeightStore::open(network("compact_x2.safetensors"));
  weights.remove("body.1.weight");
  weights.add("body.1.weight", Tensor::zeros({7}, DType::F32));
  EXPECT_THAT(
      test::error_of([&] { SrvggCompact(CompactConfig::infer_from_weights(weights), weights); }),
      testing::HasSubstr("body.1.weight"));
  EXPECT_THAT(
      test::error_of([&] { load_upscaler(test::fixture("lora/flux_lora_bfl.safetensors")); }),
      testing::HasSubstr("not an upscaler zflow runs"));
}

}  // namespace
}  // namespace zflow::models
