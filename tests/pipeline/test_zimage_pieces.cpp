// The pieces of the Z-Image pipeline against first principles: pixel <-> tensor conversion,
// mask preprocessing, CFG with Z-Image's g, normalisation and truncation, the Euler step,
// scale_noise, the inpaint blend, and the loop's batching, progress and cancellation with a
// stand-in transformer whose output we can write down.
#include <gtest/gtest.h>

#include <cmath>
#include <stop_token>

#include "pipeline/flow_euler.h"
#include "pipeline/image_tensor.h"
#include "pipeline/zimage_guidance.h"
#include "pipeline/zimage_sampler.h"

namespace zflow::pipeline {
namespace {

TEST(ZImagePieces, DecodedToU8RoundsHalfToEvenLikeNumpy) {
  EXPECT_EQ(decoded_to_u8(-1.0f), 0);
  EXPECT_EQ(decoded_to_u8(1.0f), 255);
  EXPECT_EQ(decoded_to_u8(-7.0f), 0);  // clamped
  EXPECT_EQ(decoded_to_u8(3.0f), 255);
  // (x * 0.5 + 0.5) * 255 is exactly 76.5 for x = -0.4f and 229.5 for x = 0.8f in float32
  // (found with torch/numpy). numpy's round gives the even neighbour: 76 and 230. Truncation
  // would give 76 and 229, round-half-up 77 and 230, so only half-to-even passes both.
  EXPECT_EQ(decoded_to_u8(-0.4f), 76);
  EXPECT_EQ(decoded_to_u8(0.8f), 230);
}

TEST(ZImagePieces, ImageToTensorMapsToMinusOneOne) {
  io::Image im{2, 1, {0, 255, 51, 255, 0, 102}};
  const Tensor t = image_to_tensor(im);
  ASSERT_EQ(t.shape(), (Shape{1, 3, 1, 2}));
  const float* p = t.data<float>();  // [c][x]
  EXPECT_EQ(p[0], -1.0f);            // R of pixel 0
  EXPECT_EQ(p[1], 1.0f);             // R of pixel 1
  EXPECT_EQ(p[2], 1.0f);             // G of pixel 0
  EXPECT_FLOAT_EQ(p[4], 2.0f * 51.0f / 255.0f - 1.0f);
  EXPECT_FLOAT_EQ(p[5], 2.0f * 102.0f / 255.0f - 1.0f);
}

TEST(ZImagePieces, EveryByteSurvivesARoundTrip) {
  io::Image im{256, 1, {}};
  for (int v = 0; v < 256; ++v)
    for (int c = 0; c < 3; ++c) im.rgb.push_back(static_cast<uint8_t>(c == 1 ? 255 - v : v));
  const auto back = tensor_to_images(image_to_tensor(im));
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].rgb, im.rgb);
}

TEST(ZImagePieces, PillowLumaKnownValues) {
  // Pillow's convert("L") on primaries and grey (ITU-R 601-2 weights 0.299, 0.587, 0.114).
  EXPECT_EQ(pillow_luma(255, 0, 0), 76);
  EXPECT_EQ(pillow_luma(0, 255, 0), 150);
  EXPECT_EQ(pillow_luma(0, 0, 255), 29);
  for (int v = 0; v < 256; ++v) {
    const auto u = static_cast<uint8_t>(v);
    EXPECT_EQ(pillow_luma(u, u, u), u);  // the weights sum to 65536: grey is unchanged
  }
}

TEST(ZImagePieces, TorchNearestIndexMatchesTorch) {
  // F.interpolate(arange(in).view(1, 1, 1, in), size=(1, out), mode="nearest") in torch 2.
  const std::vector<std::tuple<int64_t, int64_t, std::vector<int64_t>>> cases = {
      {50, 6, {0, 8, 16, 25, 33, 41}},
      {48, 6, {0, 8, 16, 24, 32, 40}},
      {7, 3, {0, 2, 4}},
      {3, 7, {0, 0, 0, 1, 1, 2, 2}},
  };
  for (const auto& [in, out, expected] : cases)
    for (int64_t i = 0; i < out; ++i)
      EXPECT_EQ(torch_nearest_index(i, in, out), expected[static_cast<size_t>(i)])
          << in << " -> " << out << " at " << i;
}

TEST(ZImagePieces, MaskIsGreyBinarisedAndNearestResized) {
  // 16x8 mask -> 2x1 latent: nearest picks pixels (0, 0) and (8, 0) (factor 8).
  io::Image mask{16, 8, std::vector<uint8_t>(16 * 8 * 3, 0)};
  auto set = [&](int x, int y, uint8_t r, uint8_t g, uint8_t b) {
    uint8_t* p = &mask.rgb[3 * (y * 16 + x)];
    p[0] = r, p[1] = g, p[2] = b;
  };
  set(0, 0, 128, 128, 128);  // 128 / 255 >= 0.5: repaint
  set(8, 0, 127, 127, 127);  // 127 / 255 < 0.5: keep
  Tensor m = preprocess_mask(mask, 1, 2);
  ASSERT_EQ(m.shape(), (Shape{1, 1, 1, 2}));
  EXPECT_EQ(m.data<float>()[0], 1.0f);
  EXPECT_EQ(m.data<float>()[1], 0.0f);
  // Pure green has luma 150 (repaint); pure blue 29 (keep): colour goes through the luma.
  set(0, 0, 0, 255, 0);
  set(8, 0, 0, 0, 255);
  m = preprocess_mask(mask, 1, 2);
  EXPECT_EQ(m.data<float>()[0], 1.0f);
  EXPECT_EQ(m.data<float>()[1], 0.0f);
}

TEST(ZImagePieces, CfgUsesExtraGuidance) {
  const std::vector<float> pos = {3, 4}, neg = {1, 1};
  std::vector<float> out(2);
  apply_zimage_cfg(pos, neg, 2.0f, 0.0f, out);  // pos + 2 (pos - neg) = 3 pos - 2 neg
  EXPECT_EQ(out, (std::vector<float>{7, 10}));
  apply_zimage_cfg(pos, neg, 0.0f, 0.0f, out);
  EXPECT_EQ(out, pos);
}

TEST(ZImagePieces, CfgNormalisationCapsTheNorm) {
  const std::vector<float> pos = {3, 4}, neg = {0, 0};  // |pos| = 5, pred = 2 pos, |pred| = 10
  std::vector<float> out(2);
  apply_zimage_cfg(pos, neg, 1.0f, 1.0f, out);  // capped at 5: back to pos
  EXPECT_FLOAT_EQ(out[0], 3.0f);
  EXPECT_FLOAT_EQ(out[1], 4.0f);
  apply_zimage_cfg(pos, neg, 1.0f, 1.5f, out);  // capped at 7.5: scaled by 0.75
  EXPECT_FLOAT_EQ(out[0], 4.5f);
  EXPECT_FLOAT_EQ(out[1], 6.0f);
  apply_zimage_cfg(pos, neg, 1.0f, 3.0f, out);  // 10 < 15: unchanged
  EXPECT_EQ(out, (std::vector<float>{6, 8}));
  std::vector<float> alias = pos;  // out may alias pos
  apply_zimage_cfg(alias, neg, 1.0f, 1.0f, alias);
  EXPECT_FLOAT_EQ(alias[0], 3.0f);
}

TEST(ZImagePieces, CfgTruncationTurnsGuidanceOffLate) {
  const ZImageGuidance g{4.0f, 0.0f, 0.5};
  EXPECT_EQ(guidance_for_step(g, 0.4f), 4.0f);
  EXPECT_EQ(guidance_for_step(g, 0.5f), 4.0f);  // only t > c truncates
  EXPECT_EQ(guidance_for_step(g, 0.6f), 0.0f);
  EXPECT_EQ(guidance_for_step({4.0f, 0.0f, 1.0}, 0.99f), 4.0f);
  EXPECT_EQ(guidance_for_step({0.0f, 0.0f, 1.0}, 0.1f), 0.0f);  // g = 0: no CFG at all
}

TEST(ZImagePieces, EulerStepScaleNoiseAndBlend) {
  Tensor x = Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{1, 2});
  euler_step(x, Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{2, -4}), 1.0f, 0.75f);
  EXPECT_EQ(x.to_f32_vector(), (std::vector<float>{0.5f, 3.0f}));

  const Tensor s = Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{4, 8});
  const Tensor n = Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{-4, 0});
  EXPECT_EQ(scale_noise(s, n, 0.25f).to_f32_vector(), (std::vector<float>{2.0f, 6.0f}));

  Tensor lat = Tensor::from_f32({2, 1, 1, 2}, std::vector<float>{1, 2, 3, 4});
  const Tensor known = Tensor::from_f32({2, 1, 1, 2}, std::vector<float>{-1, -2, -3, -4});
  blend_masked(lat, known, Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{1, 0}));
  EXPECT_EQ(lat.to_f32_vector(), (std::vector<float>{1, -2, 3, -4}));
}

// A stand-in transformer: out = latents + c, where c is the first value of the sample's caption,
// so positive and negative outputs differ by a known amount. Records the batch sizes it sees.
struct AffineModel {
  std::vector<int64_t>* batches;
  Tensor operator()(const Tensor& latents, std::span<const float> t,
                    const std::vector<ZImageCaption>& captions) const {
    EXPECT_EQ(static_cast<size_t>(latents.size(0)), t.size());
    EXPECT_EQ(static_cast<size_t>(latents.size(0)), captions.size());
    batches->push_back(latents.size(0));
    Tensor out = latents.contiguous().clone();
    const int64_t per = out.numel() / out.size(0);
    for (int64_t b = 0; b < out.size(0); ++b)
      for (int64_t i = 0; i < per; ++i)
        out.data<float>()[b * per + i] += captions[static_cast<size_t>(b)][0].data<float>()[0];
    return out;
  }
};

ZImageCaption caption(float c) {
  return {Tensor::from_f32({1, 1}, std::vector<float>{c})};
}

TEST(ZImagePieces, LoopBatchesCfgAndTruncates) {
  // Two steps, sigmas 1 -> 0.5 -> 0 (times t = 0 then 0.5); truncation 0.25 keeps CFG on step 1.
  const FlowSchedule schedule{{1.0f, 0.5f, 0.0f}, {1000.0f, 500.0f}};
  std::vector<int64_t> batches;
  const Tensor x0 = Tensor::from_f32({2, 1, 1, 1}, std::vector<float>{1, 2});
  const std::vector<ZImageCaption> pos = {caption(1), caption(1)}, neg = {caption(0), caption(0)};
  const Tensor out = zimage_denoise(AffineModel{&batches}, x0, schedule, pos, neg,
                                    {2.0f, 0.0f, 0.25}, nullptr, {});
  EXPECT_EQ(batches, (std::vector<int64_t>{4, 2}));  // [pos; neg] in one forward, then pos only
  // Step 1: pred = (x + 1) + 2 * 1 = x + 3; x += (0.5 - 1) * -(x + 3) -> 1.5 x + 1.5.
  // Step 2: pred = x + 1; x += (0 - 0.5) * -(x + 1) -> 1.5 x + 0.5.
  for (int b = 0; b < 2; ++b) {
    const float x = x0.data<float>()[b];
    const float s1 = 1.5f * x + 1.5f;
    EXPECT_FLOAT_EQ(out.data<float>()[b], 1.5f * s1 + 0.5f);
  }
}

TEST(ZImagePieces, LoopInpaintKeepsTheUnmaskedLatents) {
  const FlowSchedule schedule{{1.0f, 0.6f, 0.2f, 0.0f}, {1000.0f, 600.0f, 200.0f}};
  std::vector<int64_t> batches;
  ZImageInpaint inpaint{Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{0, 1}),
                        Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{5, 5}),
                        Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{-1, -1})};
  const Tensor x0 = Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{-1, -1});
  const Tensor plain =
      zimage_denoise(AffineModel{&batches}, x0, schedule, {caption(1)}, {}, {}, nullptr, {});
  const Tensor out =
      zimage_denoise(AffineModel{&batches}, x0, schedule, {caption(1)}, {}, {}, &inpaint, {});
  EXPECT_EQ(out.data<float>()[0], 5.0f);  // mask 0: the clean image latent after the last step
  // mask 1: as without inpainting (the stand-in model is element-wise, so the blended neighbour
  // does not leak in).
  EXPECT_EQ(out.data<float>()[1], plain.data<float>()[1]);
}

TEST(ZImagePieces, LoopReportsProgressAndCancels) {
  const FlowSchedule schedule{{1.0f, 0.6f, 0.2f, 0.0f}, {1000.0f, 600.0f, 200.0f}};
  std::vector<int64_t> batches;
  std::vector<int> seen;
  std::stop_source stop;
  RunControl control{[&](const StepProgress& p) {
                       seen.push_back(p.step);
                       EXPECT_EQ(p.steps, 3);
                       EXPECT_GE(p.elapsed_seconds, 0.0);
                       if (p.step == 2) stop.request_stop();
                     },
                     stop.get_token()};
  const Tensor x0 = Tensor::from_f32({1, 1, 1, 1}, std::vector<float>{0});
  EXPECT_THROW(
      zimage_denoise(AffineModel{&batches}, x0, schedule, {caption(1)}, {}, {}, nullptr, control),
      Cancelled);
  EXPECT_EQ(seen, (std::vector<int>{1, 2}));
  EXPECT_EQ(batches.size(), 2u);  // the third forward never ran
}

}  // namespace
}  // namespace zflow::pipeline
