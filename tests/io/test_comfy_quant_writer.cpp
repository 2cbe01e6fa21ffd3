// `zflow convert --type fp8|int8` (io/comfy_quant_writer.h): the written file, read back through
// ComfyUI's layout (io/comfy_quant.h), holds to the bit what quantising at load (--fp8, --int8)
// makes of the same model, in the settings and tensor shapes ComfyUI writes; and the streamed
// safetensors writer under it leaves no file behind when a tensor cannot be made.
#include "io/comfy_quant_writer.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <string>

#include "io/fp8_weights.h"
#include "io/int8_weights.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

namespace fs = std::filesystem;

fs::path temp_file(const std::string& stem) {
  return fs::temp_directory_path() / (stem + "_" + std::to_string(getpid()) + ".safetensors");
}

// Every tensor of `got` equals `want`'s: dtype, shape, bytes, and the scales beside them.
void expect_same_store(const io::WeightStore& got, const io::WeightStore& want) {
  ASSERT_EQ(got.names(), want.names());
  for (const std::string& name : want.names()) {
    const Tensor g = got.get(name), w = want.get(name);
    ASSERT_EQ(g.dtype(), w.dtype()) << name;
    ASSERT_EQ(g.shape(), w.shape()) << name;
    EXPECT_EQ(0, std::memcmp(g.raw(), w.raw(), w.nbytes())) << name;
    EXPECT_EQ(g.scale(), w.scale()) << name;
    EXPECT_TRUE(std::equal(g.row_scales().begin(), g.row_scales().end(), w.row_scales().begin(),
                           w.row_scales().end()))
        << name;
    EXPECT_EQ(g.hadamard_group(), w.hadamard_group()) << name;
  }
}

std::string settings_of(const io::SafetensorsFile& f, const std::string& layer) {
  const Tensor t = f.tensor(layer + ".comfy_quant");
  return std::string(static_cast<const char*>(t.raw()), static_cast<size_t>(t.nbytes()));
}

TEST(ComfyQuantWriter, TinyZImageReadsBackAsQuantisedAtLoad) {
  const io::WeightStore bf16 =
      io::WeightStore::open(test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors"));
  for (const auto form : {io::LoadQuantization::Fp8, io::LoadQuantization::Int8}) {
    const fs::path out = temp_file("zflow_comfy_quant");
    io::write_comfy_quantized(bf16, out, form);
    expect_same_store(io::WeightStore::open(out), io::quantize_at_load(bf16, form, Device::CPU));
    // The raw file, as ComfyUI reads it.
    const auto f = io::SafetensorsFile::open(out);
    const std::string layer = "layers.0.attention.qkv";
    if (form == io::LoadQuantization::Fp8) {
      EXPECT_EQ(settings_of(f, layer), R"({"format":"float8_e4m3fn"})");
      EXPECT_EQ(f.tensor(layer + ".weight_scale").shape(), Shape{});
    } else {
      EXPECT_EQ(settings_of(f, layer), R"({"format":"int8_tensorwise"})");
      EXPECT_EQ(f.tensor(layer + ".weight_scale").shape(), (Shape{192, 1}));
    }
    EXPECT_EQ(f.tensor(layer + ".weight_scale").dtype(), DType::F32);
    fs::remove(out);
  }
}

// Rows of 512: ConvRot groups of 256, as the published int8 convrot files.
TEST(ComfyQuantWriter, Int8RowsThatHoldGroupsOf256AreRotated) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist;
  std::vector<float> values(8 * 512);
  for (float& v : values) v = dist(rng);
  io::WeightStore store;
  store.add("layers.0.feed_forward.w1.weight", Tensor::from_f32({8, 512}, values).to(DType::BF16),
            "memory");
  const fs::path out = temp_file("zflow_comfy_quant_convrot");
  io::write_comfy_quantized(store, out, io::LoadQuantization::Int8);
  EXPECT_EQ(settings_of(io::SafetensorsFile::open(out), "layers.0.feed_forward.w1"),
            R"({"format":"int8_tensorwise","convrot":true,"convrot_groupsize":256})");
  const Tensor got = io::WeightStore::open(out).get("layers.0.feed_forward.w1.weight");
  EXPECT_EQ(got.hadamard_group(), 256);
  expect_same_store(io::WeightStore::open(out), io::quantize_weights_int8(store));
  fs::remove(out);
}

TEST(ComfyQuantWriter, QuantisedInputIsRefused) {
  io::WeightStore store;
  store.add("layers.0.attention.qkv.weight",
            io::quantize_int8_rows(Tensor::zeros({64, 64}, DType::F32), 0), "model.safetensors");
  const fs::path out = temp_file("zflow_comfy_quant_refused");
  const std::string error =
      test::error_of([&] { io::write_comfy_quantized(store, out, io::LoadQuantization::Fp8); });
  EXPECT_NE(error.find("layers.0.attention.qkv.weight"), std::string::npos) << error;
  EXPECT_NE(error.find("already quantised"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(out));
}

TEST(SafetensorsStreamed, ATensorThatFailsLeavesNoFile) {
  const fs::path out = temp_file("zflow_streamed");
  const Tensor ok = Tensor::zeros({4}, DType::F32);
  const std::vector<io::SafetensorsSource> throws = {
      {"a", {4}, DType::F32, [&] { return ok; }},
      {"b", {4}, DType::F32, []() -> Tensor { fail("cannot make b"); }}};
  EXPECT_NE(
      test::error_of([&] { io::write_safetensors_streamed(out, throws); }).find("cannot make b"),
      std::string::npos);
  const std::vector<io::SafetensorsSource> wrong_shape = {
      {"a", {5}, DType::F32, [&] { return ok; }}};
  const std::string error =
      test::error_of([&] { io::write_safetensors_streamed(out, wrong_shape); });
  EXPECT_NE(error.find("'a' was made as F32 [4], not the F32 [5]"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(fs::path(out.string() + ".tmp")));
}

}  // namespace
}  // namespace zflow
