// FLUX.2 klein KV's reference cache against diffusers 0.42.1's Flux2Transformer2DModel in its
// "extract" and "cached" modes (tools/golden/make_flux2_klein_kv.py, the tiny klein transformer of
// make_flux2_pipeline.py; bf16 weights computed in float32 on both sides): a batch of two with
// 20 reference tokens (a 4x5 grid at t = 10), 12 image tokens and 7 text tokens; extract at
// t = 0.8 (the references modulated at 0), then cached at t = 0.3 with other image tokens.
// zflow runs the references alone once and appends their keys and values in both forwards.
// Tolerance: max |got - want| / max |want| <= 1e-4, the project's fp32-CPU-versus-torch bound
// (measured: 6.2e-6 extract, 2.0e-6 cached); without the references the output is 1.15 off,
// with them modulated at the step's time 0.20 (tests).
#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "models/flux2_dit.h"
#include "test_util.h"

namespace zflow::models {
namespace {

using test::relative_error;

const std::filesystem::path kDir = test::fixture("flux2_pipeline");
constexpr double kTolerance = 1e-4;

const io::SafetensorsFile& golden() {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kDir / "flux2_kv_tiny_diffusers_transformer_io.safetensors");
  return file;
}

const Flux2Transformer& model() {
  static const Flux2Transformer m = load_flux2_transformer(kDir / "tiny_klein" / "transformer");
  return m;
}

Tensor f32(const char* name) {
  return golden().tensor(name).to(DType::F32);
}

const std::vector<Flux2Position> kRefIds = flux2_image_ids(4, 5, 10.0f);
const std::vector<Flux2Position> kImgIds = flux2_image_ids(3, 4);

TEST(Flux2KleinKv, ExtractAndCachedStepsMatchDiffusers) {
  const Flux2ReferenceCache cache = model().reference_cache(f32("refs"), kRefIds, 0.0f);
  ASSERT_EQ(cache.blocks.size(), 3u);  // 1 double + 2 single blocks
  const Tensor extract =
      model().forward(f32("img"), kImgIds, f32("txt"), std::vector<float>{0.8f, 0.8f}, {}, &cache);
  // diffusers' extract output still holds the reference rows' places: it returns image rows.
  EXPECT_LE(relative_error(extract, golden().tensor("extract")), kTolerance);
  const Tensor cached = model().forward(f32("img_later"), kImgIds, f32("txt"),
                                        std::vector<float>{0.3f, 0.3f}, {}, &cache);
  EXPECT_LE(relative_error(cached, golden().tensor("cached")), kTolerance);
}

TEST(Flux2KleinKv, TheReferencesAndTheirTimeMatter) {
  const Tensor without =
      model().forward(f32("img"), kImgIds, f32("txt"), std::vector<float>{0.8f, 0.8f});
  EXPECT_GT(relative_error(without, golden().tensor("extract")), 100 * kTolerance);
  const Flux2ReferenceCache at_step = model().reference_cache(f32("refs"), kRefIds, 0.8f);
  const Tensor wrong_time = model().forward(f32("img"), kImgIds, f32("txt"),
                                            std::vector<float>{0.8f, 0.8f}, {}, &at_step);
  EXPECT_GT(relative_error(wrong_time, golden().tensor("extract")), 100 * kTolerance);
}

TEST(Flux2KleinKv, ACacheOfAnotherBatchIsRefused) {
  const Flux2ReferenceCache one =
      model().reference_cache(f32("refs").slice(0, 0, 1).contiguous(), kRefIds, 0.0f);
  EXPECT_THROW(
      model().forward(f32("img"), kImgIds, f32("txt"), std::vector<float>{0.8f, 0.8f}, {}, &one),
      Error);
}

}  // namespace
}  // namespace zflow::models
