// The tiny Z-Image transformer with float8 weights against diffusers run on the dequantised
// weights (tools/golden/make_zimage_fp8.py): its 20 block linears quantised to scaled e4m3 as
// ComfyUI does, read from ComfyUI's two fp8 single-file layouts, or made at load by `--fp8`
// (io::quantize_weights_fp8) from the bf16 single file.
// Tolerance: max |got - want| / max |want| <= 2e-5, five times tighter than the fp32-versus-
// torch bound of test_zimage_dit.cpp (1e-4), since the weight values are identical on both
// sides (q * scale in float32) and only the order of float32 operations differs: diffusers
// multiplies by the dequantised weight, zflow by the codes, applying the scale to each dot
// product (measured: 1e-6 to 3e-6). The quantised weights themselves are checked bit for bit
// in test_fp8_weights.cpp.
// Reported (RecordProperty): the float8 output's error against the bf16 weights' output, the
// cost of quantising: 5.3% to 6.4% of the output scale (max |diff| / max |want|) on this
// random model.
#include <fmt/format.h>

#include "io/fp8_weights.h"
#include "io/safetensors.h"
#include "models/zimage_dit.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::ZImageDiTConfig;

const std::filesystem::path kDir = test::fixture("zimage_dit");
constexpr double kTolerance = 2e-5;
const char* const kCases[] = {"sq8_cap1_t0", "h6w10_cap31_t03", "h16w6_cap33_t05",
                              "batch_sq8_cap33_cap5"};

ZImageDiTConfig tiny_config() {
  return ZImageDiTConfig::from_json_file(kDir / "tiny_diffusers/transformer/config.json");
}

struct Golden {
  io::SafetensorsFile in =
      io::SafetensorsFile::open(kDir / "zimage_dit_tiny_diffusers_io.safetensors");
  io::SafetensorsFile out = io::SafetensorsFile::open(kDir / "zimage_dit_tiny_fp8_io.safetensors");

  Tensor run(const models::ZImageTransformer& model, const std::string& name) const {
    const Tensor latents = in.tensor(name + ".latents");
    const std::vector<float> t = in.tensor(name + ".t").to_f32_vector();
    std::vector<Tensor> captions;
    for (size_t i = 0; i < t.size(); ++i)
      captions.push_back(in.tensor(fmt::format("{}.caption{}", name, i)));
    return model.forward(latents, t, captions);
  }
};

void expect_matches_diffusers(const models::ZImageTransformer& model, const std::string& what) {
  const Golden g;
  for (const std::string name : kCases) {
    const Tensor got = g.run(model, name);
    const double err = test::relative_error(got, g.out.tensor(name + ".output_fp8"));
    EXPECT_LE(err, kTolerance) << what << " " << name;
    const double vs_bf16 = test::relative_error(got, g.in.tensor(name + ".output_bf16w"));
    ::testing::Test::RecordProperty(what + " " + name + " vs diffusers", std::to_string(err));
    ::testing::Test::RecordProperty(what + " " + name + " fp8 vs bf16 weights",
                                    std::to_string(vs_bf16));
  }
}

TEST(ZImageFp8, FixtureIsCurrent) {
  const Golden g;
  EXPECT_EQ(g.out.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(g.out.metadata().at("generator"), "tools/golden/make_zimage_fp8.py");
}

TEST(ZImageFp8, ComfyScaledFp8SingleFileMatchesDiffusers) {
  const auto model = models::load_zimage_transformer(
      kDir / "zimage_dit_tiny_comfy_scaled_fp8.safetensors", tiny_config());
  expect_matches_diffusers(model, "scaled_fp8");
}

TEST(ZImageFp8, ComfyPerLayerFp8SingleFileMatchesDiffusers) {
  const auto model = models::load_zimage_transformer(
      kDir / "zimage_dit_tiny_comfy_quant_fp8.safetensors", tiny_config());
  expect_matches_diffusers(model, "comfy_quant");
}

TEST(ZImageFp8, QuantisedAtLoadMatchesDiffusers) {
  const io::WeightStore bf16 =
      io::WeightStore::open(kDir / "zimage_dit_tiny_original_bf16.safetensors");
  const auto model = models::load_zimage_transformer(io::quantize_weights_fp8(bf16), tiny_config());
  expect_matches_diffusers(model, "--fp8");
}

}  // namespace
}  // namespace zflow
