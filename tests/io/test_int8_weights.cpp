// Int8 weights (io/int8_weights.h) against comfy-kitchen, the kernels ComfyUI runs them with
// (tools/golden/make_int8_weights.py): the layer settings resolved into row scales, the values
// they stand for, the W8A8 linear and the quantiser, for ConvRot groups of 256 (the published
// files'), 64 and 4, row-wise scales without rotation and one scale for a whole tensor.
#include "io/int8_weights.h"

#include <fmt/format.h>

#include <cstring>
#include <random>

#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/kernels.h"
#include "backend/ops.h"
#include "io/fp8_weights.h"
#include "io/load_quantization.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

const std::filesystem::path kCases = test::fixture("int8/int8_linear_cases.safetensors");

struct Case {
  std::string name;
  int64_t group;
  bool tensorwise;
};
const Case kAll[] = {{"h256", 256, false},
                     {"h64", 64, false},
                     {"h4", 4, false},
                     {"rowwise", 0, false},
                     {"tensorwise", 0, true}};

Tensor json_bytes(const std::string& text) {
  Tensor t = Tensor::empty({static_cast<int64_t>(text.size())}, DType::U8);
  std::memcpy(t.raw(), text.data(), text.size());
  return t;
}

std::string settings(int64_t group) {
  return group > 0 ? fmt::format(R"({{"format": "int8_tensorwise", "convrot": true, )"
                                 R"("convrot_groupsize": {}}})",
                                 group)
                   : R"({"format": "int8_tensorwise"})";
}

// The case's weight as a ComfyUI file holds it, resolved by the loader.
Tensor resolved_weight(const io::SafetensorsFile& f, const Case& c) {
  io::WeightStore s;
  s.add("blk.proj.weight", f.tensor(c.name + ".q"), "int8.safetensors");
  s.add("blk.proj.weight_scale", f.tensor(c.name + ".scale"), "int8.safetensors");
  s.add("blk.proj.comfy_quant", json_bytes(settings(c.group)), "int8.safetensors");
  io::resolve_int8_weights(s);
  EXPECT_EQ(s.size(), 1u);
  return s.get("blk.proj.weight");
}

TEST(Int8Weights, FixturesAreCurrent) {
  const auto f = io::SafetensorsFile::open(kCases);
  EXPECT_EQ(f.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(f.metadata().at("generator"), "tools/golden/make_int8_weights.py");
}

TEST(Int8Weights, SettingsBecomeRowScales) {
  const auto f = io::SafetensorsFile::open(kCases);
  for (const Case& c : kAll) {
    const Tensor w = resolved_weight(f, c);
    EXPECT_EQ(w.dtype(), DType::I8) << c.name;
    EXPECT_EQ(w.hadamard_group(), c.group) << c.name;
    const std::vector<float> stored = f.tensor(c.name + ".scale").to_f32_vector();
    ASSERT_EQ(static_cast<int64_t>(w.row_scales().size()), w.size(0)) << c.name;
    for (int64_t r = 0; r < w.size(0); ++r)  // a tensorwise scale is every row's
      EXPECT_EQ(w.row_scales()[r], stored[c.tensorwise ? 0 : r]) << c.name << " row " << r;
  }
}

// Tolerance 1e-6 of the weight's scale: comfy-kitchen rotates with a float32 matrix product,
// zflow with butterflies, so the float32 sums differ in their last bits (measured: 3e-8 to
// 2.7e-7); without a rotation the values are q * scale on both sides, equal.
TEST(Int8Weights, DequantisedValuesMatchComfyKitchen) {
  const auto f = io::SafetensorsFile::open(kCases);
  for (const Case& c : kAll) {
    const Tensor w = resolved_weight(f, c);
    const Tensor want = f.tensor(c.name + ".dequantised");
    const double err = test::relative_error(w.to(DType::F32), want);
    ::testing::Test::RecordProperty(c.name + " dequantised vs comfy-kitchen",
                                    fmt::format("{:.3g}", err));
    if (c.group == 0) {
      EXPECT_EQ(err, 0.0) << c.name;
    } else {
      EXPECT_LE(err, 1e-6) << c.name;
    }
    // A slice of rows (a fused qkv split by the loader) keeps its rows' scales.
    const Tensor rows = w.slice(0, 2, 5).to(DType::F32);
    EXPECT_EQ(test::relative_error(rows, w.to(DType::F32).slice(0, 2, 5)), 0.0) << c.name;
  }
}

// ComfyUI's W8A8 linear. The integer products are exact on both sides; what can differ is the
// final float32 rescale (a fused multiply-add here: 1e-7) and the rotated activations' last
// bits (butterflies against a matrix product), which would move an activation lying within
// float32 noise of a rounding boundary to the next integer (about 1e-2 of the output here).
// None of these inputs does (measured: 0 to 7e-8), so 1e-5 holds, and fails any real
// mistake (a lost rotation, a scale on the wrong side, no activation quantisation: 1e-2 and
// more).
TEST(Int8Weights, LinearMatchesComfyKitchenInBothMatmulPrecisions) {
  const auto f = io::SafetensorsFile::open(kCases);
  for (const auto precision : {cpu::MatmulPrecision::Float32, cpu::MatmulPrecision::Bfloat16}) {
    test::ScopedMatmulPrecision scoped(precision);
    for (const Case& c : kAll) {
      const Tensor w = resolved_weight(f, c);
      const Tensor y = ops::linear(f.tensor(c.name + ".x"), w, f.tensor(c.name + ".b"));
      const double err = test::relative_error(y, f.tensor(c.name + ".y"));
      EXPECT_LE(err, 1e-5) << c.name << " precision " << static_cast<int>(precision);
      ::testing::Test::RecordProperty(c.name + " vs comfy-kitchen", fmt::format("{:.3g}", err));
    }
  }
}

// The two ways the CPU multiplies the codes, gemm_s8's integer kernel and gemm in floats, sum
// the same integers exactly and then round the same three steps: equal to the bit.
TEST(Int8Weights, IntegerAndFloatProductsAreEqual) {
  if (!cpu::gemm_s8_available()) GTEST_SKIP() << "no AVX-512 VNNI here";
  const auto f = io::SafetensorsFile::open(kCases);
  for (const Case& c : kAll) {
    const Tensor w = resolved_weight(f, c), x = f.tensor(c.name + ".x"),
                 b = f.tensor(c.name + ".b");
    const Tensor integer = cpu::linear_int8_rows(x, w, b, cpu::Int8Products::Integer);
    const Tensor floats = cpu::linear_int8_rows(x, w, b, cpu::Int8Products::Float);
    ASSERT_EQ(integer.numel(), floats.numel());
    EXPECT_EQ(0, std::memcmp(integer.raw(), floats.raw(), integer.nbytes())) << c.name;
  }
}

// ops::linears quantises an input once for the int8 weights that read it (Z-Image's q, k, v and
// w1, w3); every output must equal its own linear to the bit, for both ways of multiplying, and
// a weight in another ConvRot group is computed on its own.
TEST(Int8Weights, LinearsThatShareAnInputEqualSeparateOnes) {
  const auto f = io::SafetensorsFile::open(kCases);
  const Case& c = kAll[1];  // ConvRot groups of 64
  const Tensor w = resolved_weight(f, c), x = f.tensor(c.name + ".x");
  std::mt19937 rng(17);
  std::normal_distribution<float> dist;
  auto random_int8 = [&](int64_t rows, int64_t group) {
    std::vector<float> v(static_cast<size_t>(rows * w.size(1)));
    for (float& e : v) e = dist(rng);
    return io::quantize_int8_rows(Tensor::from_f32({rows, w.size(1)}, v), group);
  };
  const Tensor same_group = random_int8(17, w.hadamard_group()), other_group = random_int8(9, 0);
  auto same_bits = [](const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
  };
  std::vector<cpu::Int8Products> ways = {cpu::Int8Products::Float};
  if (cpu::gemm_s8_available()) ways.push_back(cpu::Int8Products::Integer);
  for (const auto how : ways) {
    const Tensor ws[] = {w, same_group}, bs[] = {Tensor(), Tensor()};
    const std::vector<Tensor> shared = cpu::linear_int8_rows(x, ws, bs, how);
    EXPECT_TRUE(same_bits(shared[0], cpu::linear_int8_rows(x, w, Tensor(), how)));
    EXPECT_TRUE(same_bits(shared[1], cpu::linear_int8_rows(x, same_group, Tensor(), how)));
  }
  const std::vector<Tensor> ys = ops::linears(x, {w, same_group, other_group});
  ASSERT_EQ(ys.size(), 3u);
  EXPECT_TRUE(same_bits(ys[0], ops::linear(x, w)));
  EXPECT_TRUE(same_bits(ys[1], ops::linear(x, same_group)));
  EXPECT_TRUE(same_bits(ys[2], ops::linear(x, other_group)));
  // With biases (FLUX.1's projections have them), one of them absent.
  const Tensor b = f.tensor(c.name + ".b");
  const std::vector<Tensor> biased = ops::linears(x, {w, same_group}, {b, Tensor()});
  EXPECT_TRUE(same_bits(biased[0], ops::linear(x, w, b)));
  EXPECT_TRUE(same_bits(biased[1], ops::linear(x, same_group)));
}

// The requantisation LoRA merging uses: comfy-kitchen's quantiser on a float32 matrix. Without
// a rotation every code and scale is equal; with one, the rotated values' last bits may move a
// code that sits on a rounding boundary by one.
TEST(Int8Weights, QuantiserMatchesComfyKitchen) {
  const auto f = io::SafetensorsFile::open(kCases);
  for (const Case& c : kAll) {
    if (c.tensorwise) continue;  // zflow writes row scales only
    const Tensor q = io::quantize_int8_rows(f.tensor(c.name + ".w"), c.group);
    const Tensor want_q = f.tensor(c.name + ".q");
    const std::vector<float> want_scale = f.tensor(c.name + ".scale").to_f32_vector();
    ASSERT_EQ(q.shape(), want_q.shape());
    const auto* got = static_cast<const int8_t*>(q.raw());
    const auto* want = static_cast<const int8_t*>(want_q.raw());
    int64_t moved = 0;
    for (int64_t i = 0; i < q.numel(); ++i) {
      EXPECT_LE(std::abs(got[i] - want[i]), c.group > 0 ? 1 : 0) << c.name << " code " << i;
      moved += got[i] != want[i];
    }
    EXPECT_LE(moved, q.numel() / 1000) << c.name;
    for (int64_t r = 0; r < q.size(0); ++r) {
      if (c.group == 0) {
        EXPECT_EQ(q.row_scales()[r], want_scale[r]) << c.name << " row " << r;
      } else {
        EXPECT_NEAR(q.row_scales()[r], want_scale[r], 1e-6 * want_scale[r]) << c.name;
      }
    }
  }
}

// `bench --int8`: the matrices --fp8 would quantise become int8 rows (rotated where groups of
// 256 divide them: none in this tiny model), the rest stay the very same tensors.
TEST(Int8Weights, StoreQuantisationFollowsTheFp8Rule) {
  const io::WeightStore bf16 =
      io::WeightStore::open(test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors"));
  const io::WeightStore q = io::quantize_weights_int8(bf16);
  int quantised = 0;
  for (const std::string& name : bf16.names()) {
    const Tensor before = bf16.get(name), after = q.get(name);
    if (io::fp8_quantizes(name, before)) {
      ++quantised;
      EXPECT_EQ(after.dtype(), DType::I8) << name;
      EXPECT_EQ(after.hadamard_group(), 0) << name;
      EXPECT_LE(test::relative_error(after.to(DType::F32), before), 1.0 / 127) << name;
    } else {
      EXPECT_EQ(after.raw(), before.raw()) << name;
    }
  }
  EXPECT_EQ(quantised, 20);
}

// --fp8 and --int8 at load (io/load_quantization.h): each form for the picked matrices, the
// store untouched without either, and int8 refused for a GPU, where it would save nothing.
TEST(Int8Weights, LoadQuantizationPicksTheForm) {
  const io::WeightStore bf16 =
      io::WeightStore::open(test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors"));
  const io::WeightStore none = io::quantize_at_load(bf16, io::LoadQuantization::None, Device::CPU);
  const io::WeightStore fp8 = io::quantize_at_load(bf16, io::LoadQuantization::Fp8, Device::CUDA);
  const io::WeightStore int8 = io::quantize_at_load(bf16, io::LoadQuantization::Int8, Device::CPU);
  for (const std::string& name : bf16.names()) {
    const Tensor before = bf16.get(name);
    EXPECT_EQ(none.get(name).raw(), before.raw()) << name;
    const bool picked = io::fp8_quantizes(name, before);
    EXPECT_EQ(fp8.get(name).dtype(), picked ? DType::F8_E4M3 : before.dtype()) << name;
    EXPECT_EQ(int8.get(name).dtype(), picked ? DType::I8 : before.dtype()) << name;
  }
  const std::string gpu =
      test::error_of([&] { io::quantize_at_load(bf16, io::LoadQuantization::Int8, Device::CUDA); });
  EXPECT_NE(gpu.find("--int8"), std::string::npos) << gpu;
  EXPECT_NE(gpu.find("--fp8"), std::string::npos) << gpu;
}

TEST(Int8Weights, BadLayersAreNamed) {
  auto store_with = [](const std::string& conf, Tensor scale) {
    io::WeightStore s;
    s.add("blocks.0.proj.weight", Tensor::zeros({4, 16}, DType::I8), "f.safetensors");
    s.add("blocks.0.proj.weight_scale", std::move(scale), "f.safetensors");
    if (!conf.empty()) s.add("blocks.0.proj.comfy_quant", json_bytes(conf), "f.safetensors");
    return s;
  };
  const Tensor one = Tensor::from_f32({}, std::vector<float>{0.5f});
  auto error = [](io::WeightStore s, const std::vector<std::string>& meta = {}) {
    return test::error_of([&] { io::resolve_int8_weights(s, meta); });
  };
  const std::string none = error(store_with("", one));
  EXPECT_NE(none.find("blocks.0.proj"), std::string::npos) << none;
  EXPECT_NE(none.find("int8_tensorwise"), std::string::npos) << none;
  // The metadata alone is enough.
  io::WeightStore listed = store_with("", one);
  io::resolve_int8_weights(
      listed, {R"({"layers": {"blocks.0.proj": {"format": "int8_tensorwise", "convrot": true,
                "convrot_groupsize": 16}}})"});
  EXPECT_EQ(listed.get("blocks.0.proj.weight").hadamard_group(), 16);

  const std::string group = error(
      store_with(R"({"format": "int8_tensorwise", "convrot": true, "convrot_groupsize": 8})", one));
  EXPECT_NE(group.find("power of four"), std::string::npos) << group;
  const std::string wide = error(store_with(
      R"({"format": "int8_tensorwise", "convrot": true, "convrot_groupsize": 64})", one));
  EXPECT_NE(wide.find("do not divide"), std::string::npos) << wide;
  const std::string rows =
      error(store_with(R"({"format": "int8_tensorwise"})", Tensor::zeros({3}, DType::F32)));
  EXPECT_NE(rows.find("weight_scale"), std::string::npos) << rows;
  const std::string nvfp4 = error(store_with(R"({"format": "nvfp4"})", one));
  EXPECT_NE(nvfp4.find("nvfp4"), std::string::npos) << nvfp4;
  const std::string fp8 = error(store_with(R"({"format": "float8_e4m3fn"})", one));
  EXPECT_NE(fp8.find("float8_e4m3fn"), std::string::npos) << fp8;
}

}  // namespace
}  // namespace zflow
