// ZImageTransformer's Omni mode against diffusers 0.42.1 ZImageTransformer2DModel called with
// nested lists, on the tiny Omni transformer of tools/golden/make_zimage_omni.py (dim 32, 1 + 1
// refiner layers, 1 layer, siglip_feat_dim 24, bf16 weights computed in float32 on both sides).
// Cases: a batch of two, each with two condition images (8x10 and 12x8 latents with 3x4 and 5x2
// SigLIP grids) and a 6x8 target, four caption segments (the third 9 and 40 tokens: the batch
// is ragged), t = 0.25 and 0.7; and a text-only forward (one segment, no condition).
// Tolerance: max |got - want| / max |want| <= 1e-4, the project's fp32-CPU-versus-torch bound
// (measured: 2.4e-6). Each of diffusers' layout quirks, done the obvious way instead, measured
// 0.1 or more: SigLIP grids flattened by a true transpose (0.11), caption segments without the
// pad-count shift in their positions (0.14), SigLIP positions spread over token rows rather
// than latent pixels (0.096), condition tokens modulated with the step's t (0.097).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "backend/ops.h"

#include "core/error.h"
#include "io/safetensors.h"
#include "models/zimage_dit.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::ZImageOmniCondition;
using models::ZImageTransformer;
using test::relative_error;

const std::filesystem::path kDir = test::fixture("zimage_omni");
constexpr double kTolerance = 1e-4;

const io::SafetensorsFile& golden() {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kDir / "zimage_omni_transformer_io.safetensors");
  return file;
}

Tensor f32(const std::string& name) {
  return golden().tensor(name).to(DType::F32);
}

const ZImageTransformer& model() {
  static const ZImageTransformer m =
      models::load_zimage_transformer(kDir / "tiny_omni" / "transformer");
  return m;
}

struct Inputs {
  Tensor latents;
  std::vector<float> t;
  std::vector<std::vector<Tensor>> captions;
  std::vector<ZImageOmniCondition> conditions;
};

Inputs batch_inputs() {
  Inputs in;
  in.latents = ops::concat({f32("target0").unsqueeze(0), f32("target1").unsqueeze(0)}, 0);
  const Tensor t = f32("t");
  in.t = {t.data<float>()[0], t.data<float>()[1]};
  for (int b = 0; b < 2; ++b) {
    auto& segments = in.captions.emplace_back();
    for (int j = 0; j < 4; ++j) segments.push_back(f32(fmt::format("caption{}.{}", b, j)));
  }
  in.conditions = {{f32("cond0"), f32("siglip0")}, {f32("cond1"), f32("siglip1")}};
  return in;
}

double batch_error(const Tensor& out) {
  return std::max(relative_error(out.select(0, 0), golden().tensor("out0")),
                  relative_error(out.select(0, 1), golden().tensor("out1")));
}

TEST(ZImageOmni, ConfigIsOmni) {
  EXPECT_EQ(model().config().siglip_feat_dim, 24);
  EXPECT_EQ(model().config().cap_feat_dim, 3);
}

TEST(ZImageOmni, ConditionedBatchMatchesDiffusers) {
  const Inputs in = batch_inputs();
  EXPECT_LE(batch_error(model().forward_omni(in.latents, in.t, in.captions, in.conditions)),
            kTolerance);
}

TEST(ZImageOmni, SamplesAloneMatchDiffusers) {
  const Inputs in = batch_inputs();
  for (int b = 0; b < 2; ++b) {
    const Tensor out =
        model().forward_omni(in.latents.slice(0, b, b + 1).contiguous(),
                             std::vector<float>{in.t[b]}, {in.captions[b]}, in.conditions);
    EXPECT_LE(relative_error(out.select(0, 0), golden().tensor(fmt::format("out{}", b))),
              kTolerance);
  }
}

TEST(ZImageOmni, TextOnlyMatchesDiffusers) {
  const Inputs in = batch_inputs();
  const Tensor out = model().forward_omni(in.latents.slice(0, 0, 1).contiguous(),
                                          std::vector<float>{in.t[0]}, {{in.captions[0][2]}}, {});
  EXPECT_LE(relative_error(out.select(0, 0), golden().tensor("out_text_only")), kTolerance);
}

// The inputs the model reads, each changed, move the output far past the tolerance: the
// conditions' SigLIP grids and the conditions' latents.
TEST(ZImageOmni, EveryInputMatters) {
  Inputs in = batch_inputs();
  in.conditions[1].siglip = ops::mul_scalar(in.conditions[1].siglip, -1.0f);
  EXPECT_GT(batch_error(model().forward_omni(in.latents, in.t, in.captions, in.conditions)),
            100 * kTolerance);
  in = batch_inputs();
  in.conditions[0].latents = ops::mul_scalar(in.conditions[0].latents, 0.5f);
  EXPECT_GT(batch_error(model().forward_omni(in.latents, in.t, in.captions, in.conditions)),
            100 * kTolerance);
}

TEST(ZImageOmni, BadInputsAreRejected) {
  const Inputs in = batch_inputs();
  // Fewer caption segments than images.
  auto short_captions = in.captions;
  for (auto& s : short_captions) s.resize(2);
  EXPECT_THROW(model().forward_omni(in.latents, in.t, short_captions, in.conditions), Error);
  // A condition without its SigLIP grid, or with the wrong width.
  auto no_siglip = in.conditions;
  no_siglip[0].siglip = Tensor{};
  EXPECT_THROW(model().forward_omni(in.latents, in.t, in.captions, no_siglip), Error);
  auto narrow = in.conditions;
  narrow[0].siglip = Tensor::zeros({2, 2, 8}, DType::F32);
  EXPECT_THROW(model().forward_omni(in.latents, in.t, in.captions, narrow), Error);
  // Condition segments that pad differently across the batch.
  auto uneven = in.captions;
  uneven[1][0] = Tensor::zeros({40, 3}, DType::F32);
  EXPECT_THROW(model().forward_omni(in.latents, in.t, uneven, in.conditions), Error);
  // An odd-sized condition latent.
  auto odd = in.conditions;
  odd[0].latents = Tensor::zeros({16, 7, 8}, DType::F32);
  EXPECT_THROW(model().forward_omni(in.latents, in.t, in.captions, odd), Error);
}

}  // namespace
}  // namespace zflow
