// A1111's latent upscalers (pipeline/latent_upscale.h) against torch.nn.functional.interpolate
// on random latents [2, 3, 5, 7] (tools/golden/make_latent_upscale.py): every mode of A1111's
// table, enlarged 2x, 1.6x, by different factors per side, and shrunk (where antialiasing widens
// the filter). torch computes in float32 with its own order of additions: 4e-6 absolute on values
// up to about 4 (a few float32 steps).
#include "pipeline/latent_upscale.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

TEST(LatentUpscale, MatchesTorchInterpolate) {
  const io::SafetensorsFile file =
      io::SafetensorsFile::open(test::fixture("latent_upscale/latent_upscale.safetensors"));
  const Tensor input = file.tensor("input");
  const nlohmann::json cases = nlohmann::json::parse(file.metadata().at("cases"));
  ASSERT_EQ(cases.size(), 24u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c["key"].get<std::string>());
    const auto mode = parse_latent_upscale(c["name"].get<std::string>());
    ASSERT_TRUE(mode);
    const Tensor got =
        upscale_latents(input, c["height"].get<int64_t>(), c["width"].get<int64_t>(), *mode);
    const Tensor want = file.tensor(c["key"].get<std::string>());
    ASSERT_EQ(got.shape(), want.shape());
    float worst = 0.0f;
    for (int64_t i = 0; i < got.numel(); ++i)
      worst = std::max(worst, std::abs(got.data<float>()[i] - want.data<float>()[i]));
    EXPECT_LE(worst, 4e-6f);
  }
}

TEST(LatentUpscale, NamesAreA1111s) {
  EXPECT_EQ(parse_latent_upscale("Latent"), LatentUpscale::Bilinear);
  EXPECT_EQ(parse_latent_upscale("latent (bicubic antialiased)"),
            LatentUpscale::BicubicAntialiased);
  EXPECT_EQ(latent_upscale_name(LatentUpscale::NearestExact), "Latent (nearest-exact)");
  EXPECT_EQ(parse_latent_upscale("latent-nearest-exact"), LatentUpscale::NearestExact);
  EXPECT_EQ(parse_latent_upscale("latent-antialiased"), LatentUpscale::BilinearAntialiased);
  EXPECT_EQ(parse_latent_upscale("Latent (nearest exact)"), LatentUpscale::NearestExact);
  EXPECT_EQ(parse_latent_upscale("Lanczos"), std::nullopt);
  EXPECT_THROW(upscale_latents(Tensor::zeros({1, 4, 2}, DType::F32), 4, 4, LatentUpscale::Bilinear),
               Error);
}

}  // namespace
}  // namespace zflow::pipeline
