// Float8 weights (io/fp8_weights.h): ComfyUI's two fp8 layouts resolved into scaled tensors, and
// the `--fp8` quantiser against ComfyUI's (comfy-kitchen's) own result in torch, bit for bit
// (tools/golden/make_zimage_fp8.py quantised the tiny Z-Image single file's bf16 weights).
#include "io/fp8_weights.h"

#include <cmath>
#include <cstring>
#include <set>

#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

const std::filesystem::path kOriginal =
    test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors");
const std::filesystem::path kScaledFp8 =
    test::fixture("zimage_dit/zimage_dit_tiny_comfy_scaled_fp8.safetensors");
const std::filesystem::path kComfyQuant =
    test::fixture("zimage_dit/zimage_dit_tiny_comfy_quant_fp8.safetensors");
const std::string kPrefix = "model.diffusion_model.";

// The layers the generator quantised: those with a scale in the newer file.
std::set<std::string> quantised_layers() {
  std::set<std::string> out;
  const auto file = io::SafetensorsFile::open(kComfyQuant);
  for (const auto& info : file.tensors())
    if (info.name.ends_with(".weight_scale"))
      out.insert(info.name.substr(0, info.name.size() - 13));
  return out;
}

TEST(Fp8Weights, FixturesAreCurrent) {
  for (const auto& path : {kScaledFp8, kComfyQuant}) {
    const auto file = io::SafetensorsFile::open(path);
    EXPECT_EQ(file.metadata().at("zflow_fixture_format"), "1");
    EXPECT_EQ(file.metadata().at("generator"), "tools/golden/make_zimage_fp8.py");
  }
  EXPECT_EQ(quantised_layers().size(), 20u);  // 4 blocks x (qkv, out, w1, w2, w3)
}

// Both layouts open to the same tensors: float8 weights carrying the file's scale, and none of
// the scale_weight / weight_scale / scale_input / comfy_quant / scaled_fp8 tensors.
TEST(Fp8Weights, ComfyLayoutsResolveToScaledTensors) {
  const auto raw = io::SafetensorsFile::open(kComfyQuant);
  const io::WeightStore scaled = io::WeightStore::open(kScaledFp8);
  const io::WeightStore quant = io::WeightStore::open(kComfyQuant);
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  EXPECT_EQ(scaled.size(), original.size());
  EXPECT_EQ(quant.size(), original.size());
  for (const std::string& name : original.names()) {
    ASSERT_TRUE(quant.contains(name)) << name;
    ASSERT_TRUE(scaled.contains(kPrefix + name)) << name;
  }
  for (const std::string& layer : quantised_layers()) {
    const float scale = raw.tensor(layer + ".weight_scale").data<float>()[0];
    for (const Tensor& w :
         {quant.get(layer + ".weight"), scaled.get(kPrefix + layer + ".weight")}) {
      EXPECT_EQ(w.dtype(), DType::F8_E4M3) << layer;
      EXPECT_EQ(w.scale(), scale) << layer;
    }
  }
  EXPECT_EQ(quant.get("x_embedder.weight").dtype(), DType::BF16);
  EXPECT_EQ(quant.get("x_embedder.weight").scale(), 1.0f);
}

// ComfyUI's quantiser in torch and ours give the same codes and scales for every layer, and
// pick the same layers (gguf_convert's keep-in-float rule).
TEST(Fp8Weights, QuantiserMatchesComfyUIBitForBit) {
  const io::WeightStore ours = io::quantize_weights_fp8(io::WeightStore::open(kOriginal));
  const auto comfy = io::SafetensorsFile::open(kComfyQuant);
  const std::set<std::string> layers = quantised_layers();
  for (const std::string& name : ours.names()) {
    const Tensor t = ours.get(name);
    const std::string layer = name.substr(0, name.size() - 7);
    if (!layers.count(layer)) {
      EXPECT_NE(t.dtype(), DType::F8_E4M3) << name;
      continue;
    }
    ASSERT_EQ(t.dtype(), DType::F8_E4M3) << name;
    EXPECT_EQ(t.scale(), comfy.tensor(layer + ".weight_scale").data<float>()[0]) << name;
    const Tensor want = comfy.tensor(name);
    ASSERT_EQ(want.dtype(), DType::F8_E4M3);
    ASSERT_EQ(want.numel(), t.numel());
    EXPECT_EQ(std::memcmp(t.raw(), want.raw(), t.nbytes()), 0) << name;
  }
}

// The quantiser on edge values: amax maps to 448 exactly; the rounding of w / scale is to
// nearest even; an all-zero tensor gets scale 1 (not the 0 that would make every value NaN).
TEST(Fp8Weights, QuantiserEdgeCases) {
  const Tensor w = Tensor::from_f32({1, 4}, std::vector<float>{-3.5f, 1.0f, 0.0f, 0.25f});
  const Tensor q = io::quantize_fp8_e4m3(w);
  EXPECT_EQ(q.scale(), 3.5f / 448.0f);
  const auto v = q.to_f32_vector();
  EXPECT_EQ(v[0], -3.5f);  // -448 * scale
  EXPECT_EQ(v[2], 0.0f);
  EXPECT_NEAR(v[1], 1.0f, 1.0f / 16);  // 3 mantissa bits: within half a step of 1/8
  const Tensor z = io::quantize_fp8_e4m3(Tensor::zeros({2, 3}, DType::BF16));
  EXPECT_EQ(z.scale(), 1.0f);
  for (float x : z.to_f32_vector()) EXPECT_EQ(x, 0.0f);
  EXPECT_THROW(io::quantize_fp8_e4m3(Tensor::zeros({4}, DType::I32)), Error);
}

Tensor json_bytes(const std::string& text) {
  Tensor t = Tensor::empty({static_cast<int64_t>(text.size())}, DType::U8);
  std::memcpy(t.raw(), text.data(), text.size());
  return t;
}

TEST(Fp8Weights, UnsupportedFormatsAreNamed) {
  auto store_with = [](const std::string& conf) {
    io::WeightStore s;
    s.add("blocks.0.proj.weight", Tensor::zeros({4, 4}, DType::F8_E4M3), "f.safetensors");
    s.add("blocks.0.proj.weight_scale", Tensor::from_f32({}, std::vector<float>{0.5f}));
    s.add("blocks.0.proj.comfy_quant", json_bytes(conf));
    return s;
  };
  io::WeightStore nvfp4 = store_with(R"({"format": "nvfp4"})");
  const std::string msg = test::error_of([&] { io::resolve_fp8_weights(nvfp4); });
  EXPECT_NE(msg.find("nvfp4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("blocks.0.proj"), std::string::npos) << msg;

  io::WeightStore e5m2 = store_with(R"({"format": "float8_e5m2"})");
  EXPECT_NE(test::error_of([&] { io::resolve_fp8_weights(e5m2); }).find("F8_E4M3"),
            std::string::npos);

  io::WeightStore fine = store_with(R"({"format": "float8_e4m3fn"})");
  io::resolve_fp8_weights(fine);
  EXPECT_EQ(fine.size(), 1u);
  EXPECT_EQ(fine.get("blocks.0.proj.weight").scale(), 0.5f);

  io::WeightStore meta = store_with(R"({"format": "float8_e4m3fn"})");
  const std::string header = R"({"layers": {"blocks.1.mlp": {"format": "mxfp8"}}})";
  EXPECT_NE(test::error_of([&] { io::resolve_fp8_weights(meta, {header}); }).find("mxfp8"),
            std::string::npos);
}

// Float8 tensors no op reads as float8 (a norm weight, a bias) become float32 values * scale;
// a plain float8 matrix keeps scale 1; e5m2 is read too.
TEST(Fp8Weights, NonMatricesAreWidenedAndPlainFloat8Kept) {
  io::WeightStore s;
  const Tensor norm = Tensor::from_f32({3}, std::vector<float>{1.0f, -2.0f, 0.5f});
  s.add("norm.weight", norm.to(DType::F8_E4M3));
  s.add("norm.scale_weight", Tensor::from_f32({1}, std::vector<float>{0.25f}));
  s.add("proj.bias", norm.to(DType::F8_E5M2));
  s.add("proj.weight", Tensor::zeros({2, 3}, DType::F8_E5M2));
  s.add("scaled_fp8", Tensor::zeros({0}, DType::F8_E4M3));
  io::resolve_fp8_weights(s);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.get("norm.weight").dtype(), DType::F32);
  EXPECT_EQ(s.get("norm.weight").to_f32_vector(), (std::vector<float>{0.25f, -0.5f, 0.125f}));
  EXPECT_EQ(s.get("proj.bias").dtype(), DType::F32);
  EXPECT_EQ(s.get("proj.weight").dtype(), DType::F8_E5M2);
  EXPECT_EQ(s.get("proj.weight").scale(), 1.0f);
}

TEST(Fp8Weights, FlagRuleFollowsGgufConvert) {
  const Tensor matrix = Tensor::zeros({64, 64}, DType::BF16);
  EXPECT_TRUE(io::fp8_quantizes("layers.3.attention.qkv.weight", matrix));
  EXPECT_TRUE(io::fp8_quantizes("double_blocks.0.img_mlp.0.weight", matrix));
  for (const char* kept : {"x_embedder.weight", "layers.0.adaLN_modulation.0.weight",
                           "final_layer.linear.weight", "t_embedder.mlp.0.weight", "img_in.weight"})
    EXPECT_FALSE(io::fp8_quantizes(kept, matrix)) << kept;
  EXPECT_FALSE(io::fp8_quantizes("layers.0.w1.weight", Tensor::zeros({16, 16}, DType::BF16)));
  EXPECT_FALSE(io::fp8_quantizes("layers.0.w1.bias", Tensor::zeros({4096}, DType::BF16)));
  EXPECT_FALSE(io::fp8_quantizes("layers.0.w1.weight", Tensor::zeros({64, 64}, DType::Q8_0)));
}

}  // namespace
}  // namespace zflow
