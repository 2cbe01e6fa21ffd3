// Z-Image's ControlNet against tools/golden/make_zimage_controlnet.py: diffusers 0.42.1's
// ZImageControlNetModel driving ZImageTransformer2DModel, with the 2.x refiner hints added to
// the main noise refiner as VideoX-Fun and ComfyUI add them. A tiny transformer (dim 64, 4
// layers, 2 refiner layers) and one tiny ControlNet per release generation (1.0: 16 channels,
// plain refiner; 2.0: 33 channels, control layers as refiner; 2.1: 33 channels, control refiner
// blocks), loaded from single files without config as the releases ship, so the generation,
// channel count and layer places are detected from the weights.
// Tolerance: max |got - want| / max |want| <= 1e-4, the project's fp32-CPU-versus-torch bound
// (DESIGN.md): the same bf16-valued weights in float32 on both sides, float32 summation order
// through up to 12 blocks.
#include "models/zimage_controlnet.h"

#include <fmt/format.h>
#include <gmock/gmock.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::ZImageControl;
using models::ZImageControlNet;
using models::ZImageControlNetConfig;
using models::ZImageControlRefiner;
using models::ZImageDiTConfig;
using models::ZImageTransformer;
using testing::HasSubstr;

const std::filesystem::path kDir = test::fixture("zimage_controlnet");
constexpr double kTolerance = 1e-4;

std::filesystem::path controlnet_file(const std::string& version) {
  return kDir / fmt::format("zimage_controlnet_tiny_{}.safetensors", version);
}

struct Fixture {
  ZImageTransformer transformer = models::load_zimage_transformer(kDir / "tiny_transformer");
  io::SafetensorsFile io =
      io::SafetensorsFile::open(kDir / "zimage_controlnet_tiny_io.safetensors");

  // The case's output with `net`, and its expected output.
  std::pair<Tensor, Tensor> run(const std::string& name, const ZImageControlNet& net) const {
    const std::vector<float> t = io.tensor(name + ".t").to_f32_vector();
    std::vector<Tensor> captions;
    for (size_t i = 0; i < t.size(); ++i)
      captions.push_back(io.tensor(fmt::format("{}.caption{}", name, i)));
    const ZImageControl control{&net, io.tensor(name + ".control"),
                                io.tensor(name + ".scale").to_f32_vector()[0]};
    return {transformer.forward(io.tensor(name + ".latents"), t, captions, &control),
            io.tensor(name + ".output")};
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

ZImageControlNet load(const std::string& version) {
  return models::load_zimage_controlnet(controlnet_file(version), fixture().transformer.config());
}

TEST(ZImageControlNet, DetectsEachGenerationFromItsWeights) {
  const ZImageDiTConfig& main = fixture().transformer.config();
  const ZImageControlNetConfig v1 = load("v1").config();
  EXPECT_EQ(v1.control_in_dim, 16);
  EXPECT_EQ(v1.control_layers_places, (std::vector<int>{0, 2}));
  EXPECT_EQ(v1.refiner, ZImageControlRefiner::Plain);
  EXPECT_TRUE(v1.control_refiner_layers_places.empty());
  const ZImageControlNetConfig v20 = load("v20").config();
  EXPECT_EQ(v20.control_in_dim, 33);
  EXPECT_EQ(v20.control_layers_places, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(v20.refiner, ZImageControlRefiner::ControlLayers);
  EXPECT_EQ(v20.control_refiner_layers_places, (std::vector<int>{0, 1}));
  const ZImageControlNetConfig v21 = load("v21").config();
  EXPECT_EQ(v21.control_in_dim, 33);
  EXPECT_EQ(v21.control_layers_places, (std::vector<int>{0, 2}));
  EXPECT_EQ(v21.refiner, ZImageControlRefiner::ControlBlocks);
  EXPECT_EQ(v21.control_refiner_layers_places, (std::vector<int>{0, 1}));
  EXPECT_EQ(main.n_layers, 4);
}

class ZImageControlNetCase : public ::testing::TestWithParam<std::string> {};

TEST_P(ZImageControlNetCase, MatchesReference) {
  const std::string name = GetParam();
  const ZImageControlNet net = load(name.substr(0, name.find('_')));
  const auto [got, want] = fixture().run(name, net);
  ASSERT_EQ(got.shape(), want.shape());
  EXPECT_LE(test::relative_error(got, want), kTolerance) << name;
}

INSTANTIATE_TEST_SUITE_P(Golden, ZImageControlNetCase,
                         ::testing::Values("v1_sq8_cap5", "v1_h6w10_cap33", "v20_sq8_cap5",
                                           "v21_h10w6_cap20", "v21_batch_cap40_cap7"));

// Hints after the main noise refiner are what the 2.x files were trained with; dropping them
// (diffusers 0.42.1's behaviour) must move the output well past the tolerance, or the golden
// would not tell the two apart.
TEST(ZImageControlNet, RefinerHintsReachTheMainStream) {
  io::WeightStore weights = io::WeightStore::open(controlnet_file("v21"));
  ZImageControlNetConfig config =
      ZImageControlNetConfig::infer_from_weights(weights, fixture().transformer.config());
  config.control_refiner_layers_places.clear();
  const ZImageControlNet without(config, fixture().transformer.config(), weights);
  const auto [got, want] = fixture().run("v21_h10w6_cap20", without);
  EXPECT_GT(test::relative_error(got, want), 100 * kTolerance);
}

TEST(ZImageControlNet, RejectsMismatchedInputs) {
  const ZImageControlNet net = load("v1");
  const Fixture& f = fixture();
  const Tensor latents = f.io.tensor("v1_sq8_cap5.latents");
  const std::vector<Tensor> captions = {f.io.tensor("v1_sq8_cap5.caption0")};
  const std::vector<float> t = {0.5f};
  const ZImageControl wrong_size{&net, Tensor::zeros({1, 16, 6, 8}, DType::F32), 1.0f};
  EXPECT_THAT(test::error_of([&] { f.transformer.forward(latents, t, captions, &wrong_size); }),
              HasSubstr("control input has shape [1, 16, 6, 8]"));
  const ZImageControl wrong_channels{&net, Tensor::zeros({1, 33, 8, 8}, DType::F32), 1.0f};
  EXPECT_THAT(test::error_of([&] { f.transformer.forward(latents, t, captions, &wrong_channels); }),
              HasSubstr("expected F32 or BF16 [1 or 1, 16, 8, 8]"));
}

TEST(ZImageControlNet, RejectsFilesThatAreNotControlNetsOrDoNotFit) {
  const ZImageDiTConfig& main = fixture().transformer.config();
  EXPECT_THAT(
      test::error_of([&] { models::load_zimage_controlnet(kDir / "tiny_transformer", main); }),
      HasSubstr("expected \"ZImageControlNetModel\""));
  EXPECT_THAT(test::error_of([&] {
                models::load_zimage_controlnet(
                    kDir / "tiny_transformer" / "diffusion_pytorch_model.safetensors", main);
              }),
              HasSubstr("not a Z-Image ControlNet"));
  ZImageDiTConfig wider = main;
  wider.dim = 128;
  wider.n_heads = 4;
  EXPECT_THAT(test::error_of([&] { models::load_zimage_controlnet(controlnet_file("v1"), wider); }),
              HasSubstr("expected [128, 4 x control_in_dim]"));
  ZImageDiTConfig shallow = main;
  shallow.n_layers = 1;
  EXPECT_THAT(
      test::error_of([&] { models::load_zimage_controlnet(controlnet_file("v20"), shallow); }),
      HasSubstr("4 control_layers for a transformer of 1 layers"));
}

// The released layouts at full size: their places, and parameter counts equal to the sizes
// facts/zimage.md section 6.1 computes from the published files (1.55 B for 1.0, 3.36 B for 2.1).
TEST(ZImageControlNet, ReleasedLayoutsAtFullSize) {
  const ZImageDiTConfig release;
  auto params = [&](const ZImageControlNetConfig& c) {
    double n = 0;
    for (const models::ParameterSpec& p : models::zimage_controlnet_parameters(c, release)) {
      double numel = 1;
      for (int64_t d : p.shape) numel *= static_cast<double>(d);
      n += numel;
    }
    return n;
  };
  const auto v1 = ZImageControlNetConfig::union_release(ZImageControlRefiner::Plain, release);
  EXPECT_EQ(v1.control_layers_places, (std::vector<int>{0, 5, 10, 15, 20, 25}));
  EXPECT_EQ(v1.control_in_dim, 16);
  EXPECT_NEAR(params(v1) / 1e9, 1.55, 0.005);
  const auto v21 =
      ZImageControlNetConfig::union_release(ZImageControlRefiner::ControlBlocks, release);
  EXPECT_EQ(v21.control_layers_places.size(), 15u);
  EXPECT_EQ(v21.control_layers_places.back(), 28);
  EXPECT_EQ(v21.control_in_dim, 33);
  EXPECT_EQ(v21.control_refiner_layers_places, (std::vector<int>{0, 1}));
  EXPECT_NEAR(params(v21) / 1e9, 3.36, 0.005);
}

}  // namespace
}  // namespace zflow
