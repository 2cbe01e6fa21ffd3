// ESRGAN upscalers against spandrel 0.4.2 on tiny random networks (make_esrgan.py): a 4x network in
// the three key layouts published files use, a 2x Real-ESRGAN one (reflect padding and pixel
// unshuffle of a 13 x 11 picture) and an ESRGAN+ one. Tolerance: fp32 against fp32 (the bf16
// weights are exact in float32), 1e-4 of the output's scale, as the other network goldens.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/error.h"
#include "io/key_map_esrgan.h"
#include "io/safetensors.h"
#include "models/esrgan.h"
#include "test_util.h"

namespace zflow::models {
namespace {

Tensor golden(const std::string& name) {
  return io::SafetensorsFile::open(test::fixture("esrgan/esrgan_io.safetensors"))
      .tensor(name)
      .to(DType::F32);
}

std::filesystem::path network(const std::string& name) {
  return test::fixture("esrgan/esrgan_" + name + ".safetensors");
}

TEST(Esrgan, FourTimesEqualsSpandrelInEveryLayout) {
  for (const char* layout : {"basicsr", "original", "bsrgan"}) {
    SCOPED_TRACE(layout);
    const Esrgan model = load_esrgan(network(std::string("x4_") + layout));
    EXPECT_EQ(model.scale(), 4);
    EXPECT_EQ(model.config().blocks, 1);
    EXPECT_EQ(model.config().features, 8);
    EXPECT_EQ(model.config().growth, 32);
    EXPECT_FALSE(model.config().plus);
    EXPECT_LE(test::relative_error(model.upscale(golden("image")), golden("x4_output")), 1e-4);
  }
}

TEST(Esrgan, TwoTimesRealEsrganUnshufflesAnOddPicture) {
  const Esrgan model = load_esrgan(network("x2_basicsr"));
  EXPECT_EQ(model.config().unshuffle, 2);
  EXPECT_EQ(model.config().upsamplings, 2);
  EXPECT_EQ(model.config().blocks, 2);
  EXPECT_EQ(model.scale(), 2);
  const Tensor out = model.upscale(golden("image"));
  EXPECT_EQ(out.shape(), (Shape{1, 3, 22, 26}));
  EXPECT_LE(test::relative_error(out, golden("x2_output")), 1e-4);
}

TEST(Esrgan, PlusAddsItsShortcuts) {
  const Esrgan model = load_esrgan(network("plus_x4_original"));
  EXPECT_TRUE(model.config().plus);
  EXPECT_LE(test::relative_error(model.upscale(golden("image")), golden("plus_x4_output")), 1e-4);
}

TEST(Esrgan, FlopsCountEveryConvOnItsGrid) {
  // 8 features, growth 32, one RRDB, 4x: per input pixel, 2 x multiply-adds of 3x3 convs.
  const EsrganConfig c{3, 3, 8, 32, 1, 2, 1, false};
  double dense = 0.0;
  for (int k = 0; k < 4; ++k) dense += (8.0 + 32 * k) * 32;
  dense += (8.0 + 4 * 32) * 8;
  const double per_pixel = 2 * 9 *
                           (3 * 8 + 3 * dense + 8 * 8  // conv_first, the RRDB, conv_body
                            + 4 * 64 + 16 * 64 + 16 * 64 + 16 * 8 * 3);  // up1, up2, hr, last
  EXPECT_DOUBLE_EQ(esrgan_flops(c, 10, 20), 200.0 * per_pixel);
}

TEST(Esrgan, ErrorsNameTheFileAndTensor) {
  io::WeightStore store = io::WeightStore::open(network("x4_original"));
  store.add("model.7.weight", Tensor::zeros({8, 8, 3, 3}, DType::F32));
  EXPECT_THAT(test::error_of([&] { io::esrgan_to_basicsr(store); }),
              testing::HasSubstr("'model.7.weight' is not part of an ESRGAN network"));
  store.remove("model.7.weight");
  store.add("model.99999999999999999999.weight", Tensor::zeros({8, 8, 3, 3}, DType::F32));
  EXPECT_THAT(test::error_of([&] { io::esrgan_to_basicsr(store); }),
              testing::HasSubstr("'model.99999999999999999999.weight' is not part of"));
  io::WeightStore other;
  other.add("encoder.conv_in.weight", Tensor::zeros({1}, DType::F32));
  EXPECT_FALSE(io::detect_esrgan_layout(other).has_value());
  EXPECT_THAT(test::error_of([&] { io::esrgan_to_basicsr(other); }),
              testing::HasSubstr("not an ESRGAN (RRDBNet) upscaler"));
  io::WeightStore basicsr = io::esrgan_to_basicsr(io::WeightStore::open(network("x4_basicsr")));
  basicsr.remove("conv_hr.bias");
  EXPECT_THAT(test::error_of([&] { Esrgan(EsrganConfig::infer_from_weights(basicsr), basicsr); }),
              testing::HasSubstr("conv_hr.bias"));
}

}  // namespace
}  // namespace zflow::models
