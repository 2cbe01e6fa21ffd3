// Live previews: the latent shrink (averages worked out by hand) and, on the tiny Z-Image model,
// one preview per step whose last one IS the final image: after the last step (sigma_next = 0)
// the Euler update x + (0 - sigma) v and the estimate x - sigma v are the same float operations.
#include <gtest/gtest.h>

#include "pipeline/preview.h"
#include "pipeline/zimage_pipeline.h"
#include "test_util.h"

namespace zflow::pipeline {
namespace {

TEST(Preview, ShrinkAveragesCellsWithPartialEdges) {
  // 1 x 1 x 5 x 3 holding 0..14; at most 2 cells a side -> k = 3 -> 2 x 1.
  std::vector<float> v(15);
  for (int i = 0; i < 15; ++i) v[i] = float(i);
  const Tensor x = Tensor::from_f32({1, 1, 5, 3}, v);
  const Tensor s = shrink_latents(x, 2);
  ASSERT_EQ(s.shape(), (Shape{1, 1, 2, 1}));
  EXPECT_FLOAT_EQ(s.data<float>()[0], 4.0f);           // mean of 0..8
  EXPECT_FLOAT_EQ(s.data<float>()[1], 11.5f);          // mean of 9..14
  EXPECT_EQ(shrink_latents(x, 8).shape(), x.shape());  // small enough already
}

TEST(Preview, OnePerStepAndTheLastIsTheImage) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen3_tokenizer/tokenizer.json"));
  const auto pipe = ZImagePipeline::load({.model_dir = test::fixture("zimage_pipeline/tiny"),
                                          .tokenizer = test::shared_asset("qwen3_tokenizer")});
  ZImageRequest r;
  r.prompt = "a lighthouse";
  r.width = 64;
  r.height = 48;
  r.steps = 3;
  r.seed = 4;
  std::vector<std::vector<io::Image>> previews;
  RunControl control;
  control.on_preview = [&](const std::vector<io::Image>& images) { previews.push_back(images); };
  const auto images = pipe.generate(r, control);
  ASSERT_EQ(previews.size(), 3u);
  ASSERT_EQ(previews.back().size(), 1u);
  EXPECT_EQ(previews.back()[0].width, 64);
  EXPECT_EQ(previews.back()[0].rgb, images[0].rgb);
  EXPECT_NE(previews.front()[0].rgb, images[0].rgb);
  // Without on_preview nothing changes: the same image.
  EXPECT_EQ(pipe.generate(r)[0].rgb, images[0].rgb);
}

}  // namespace
}  // namespace zflow::pipeline
