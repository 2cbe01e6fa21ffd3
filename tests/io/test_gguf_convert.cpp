// convert_to_gguf on the tiny Z-Image original-layout file: the per-tensor rules, and a round
// trip (convert, reopen) that keeps every name and shape, every kept tensor exactly, and
// every quantised one within its type's quantisation error.
#include <unistd.h>

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "io/gguf.h"
#include "io/gguf_convert.h"
#include "io/weight_store.h"
#include "test_util.h"

namespace zflow::io {
namespace {

namespace fs = std::filesystem;

const fs::path kOriginal = test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors");

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("zflow_convert_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

TEST(GgufConvert, RulesKeepSmallSensitiveAndUnevenTensorsInFloat) {
  const Tensor matrix = Tensor::zeros({64, 512}, DType::BF16);
  EXPECT_EQ(gguf_convert_dtype("layers.0.attention.qkv.weight", matrix, DType::Q4_K), DType::Q4_K);
  EXPECT_EQ(gguf_convert_dtype("layers.0.adaLN_modulation.0.weight", matrix, DType::Q4_K),
            DType::BF16);
  EXPECT_EQ(gguf_convert_dtype("x_embedder.weight", matrix, DType::Q8_0), DType::BF16);
  EXPECT_EQ(gguf_convert_dtype("final_layer.linear.weight", matrix, DType::Q8_0), DType::BF16);
  EXPECT_EQ(gguf_convert_dtype("layers.0.attention_norm1.weight",
                               Tensor::zeros({4096}, DType::BF16), DType::Q8_0),
            DType::F32);
  EXPECT_EQ(gguf_convert_dtype("tiny.weight", Tensor::zeros({32, 32}, DType::F16), DType::Q8_0),
            DType::F32);  // 1024 values
  // Rows of 96: not whole Q4_K blocks (256) but whole Q8_0 blocks (32); rows of 170: neither.
  EXPECT_EQ(gguf_convert_dtype("w", Tensor::zeros({64, 96}, DType::F32), DType::Q4_K), DType::Q8_0);
  EXPECT_EQ(gguf_convert_dtype("w", Tensor::zeros({64, 170}, DType::F16), DType::Q4_K), DType::F16);
  EXPECT_EQ(gguf_convert_dtype("w", Tensor::zeros({64, 64}, DType::F8_E4M3), DType::Q8_0),
            DType::Q8_0);
  EXPECT_THROW(gguf_convert_dtype("w", matrix, DType::Q2_K), Error);
}

// Quantisation error bounds per value, relative to the largest |value| of the tensor:
// Q8_0 half a step of max/127 (0.004); Q4_0 codes span -8d..7d with d = max/8 of the block,
// so a value opposite in sign to the block's largest is clipped at 7/8 of it (up to 1/8,
// 0.13 with fp16 scale rounding); Q4_K half a step of a sub-block range up to 2 max over 15
// codes plus its 6-bit scale and min rounding (0.08, bound 0.1). The point is that every
// value lands near its source, i.e. names, shapes and blocks line up.
TEST(GgufConvert, RoundTripKeepsNamesShapesAndValues) {
  const WeightStore source = WeightStore::open(kOriginal);
  for (const auto& [target, bound] :
       {std::pair{DType::Q8_0, 0.005}, std::pair{DType::Q4_0, 0.13}, std::pair{DType::Q4_K, 0.1}}) {
    TempDir dir;
    const fs::path out = dir.path / "z.gguf";
    convert_to_gguf(source, out, {target, "lumina2", {{"zflow.test", GgufValue::of_bool(true)}}});
    const WeightStore converted = WeightStore::open(out);
    ASSERT_NE(converted.gguf_header(), nullptr);
    EXPECT_EQ(converted.gguf_header()->find("general.architecture")->as_string("arch"), "lumina2");
    EXPECT_EQ(converted.names(), source.names());
    int quantised = 0;
    for (const std::string& name : source.names()) {
      const Tensor a = source.get(name), b = converted.get(name);
      ASSERT_EQ(a.shape(), b.shape()) << name;
      EXPECT_EQ(b.dtype(), gguf_convert_dtype(name, a, target)) << name;
      const std::vector<float> x = a.to_f32_vector(), y = b.to_f32_vector();
      if (!dtype_is_quantized(b.dtype())) {
        EXPECT_EQ(x, y) << name;  // bf16 -> bf16 or f32: exact
        continue;
      }
      ++quantised;
      float scale = 0.0f;
      for (float v : x) scale = std::max(scale, std::fabs(v));
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_LE(std::fabs(x[i] - y[i]), bound * scale) << name << "[" << i << "]";
    }
    EXPECT_GT(quantised, 4) << dtype_name(target);
  }
}

}  // namespace
}  // namespace zflow::io
