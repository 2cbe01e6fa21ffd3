// Models loaded from GGUF files in the published layouts:
//   - Qwen3 with llama.cpp names (token_embd, blk.N.attn_q, ...) and qwen3.* metadata, as
//     gguf-py's TensorNameMap names them (tools/golden/make_gguf.py), against the
//     transformers golden of the same tiny model;
//   - Z-Image as ComfyUI-GGUF stores it (the ComfyUI single-file names without the
//     model.diffusion_model. prefix, architecture "lumina2"), written here by zflow's GGUF
//     writer from the original-layout fixture, in bf16 and with Q8_0 matrices.
#include <unistd.h>

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <gmock/gmock.h>

#include "io/gguf.h"
#include "io/key_map_qwen3.h"
#include "io/safetensors.h"
#include "io/weight_store.h"
#include "models/detect.h"
#include "models/qwen3.h"
#include "models/zimage_dit.h"
#include "test_util.h"

namespace zflow::models {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const fs::path kQwen3Gguf = test::fixture("gguf/qwen3_tiny_llamacpp_weights.gguf");
const fs::path kQwen3Comfy = test::fixture("qwen3/qwen3_tiny_comfy_weights.safetensors");
const fs::path kQwen3Io = test::fixture("qwen3/qwen3_tiny_diffusers_io.safetensors");
const fs::path kZImageOriginal =
    test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors");
const fs::path kZImageIo = test::fixture("zimage_dit/zimage_dit_tiny_diffusers_io.safetensors");

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / fmt::format("zflow_gguf_models_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// Every tensor of the llama.cpp file is the transformers tensor of the same place, rounded
// to the dtype the file stores (F32 / F16 / BF16 conversions are exact roundings, so equal).
TEST(GgufModels, Qwen3LlamaCppNamesMapToTransformers) {
  const io::WeightStore gguf = io::WeightStore::open(kQwen3Gguf);
  ASSERT_TRUE(io::has_llamacpp_qwen3_names(gguf));
  const io::WeightStore named = qwen3_model_weights(gguf);
  const io::WeightStore comfy = qwen3_model_weights(io::WeightStore::open(kQwen3Comfy));
  EXPECT_EQ(named.names(), comfy.names());
  for (const std::string& name : comfy.names()) {
    const Tensor got = named.get(name);
    ASSERT_EQ(got.shape(), comfy.get(name).shape()) << name;
    EXPECT_EQ(got.to_f32_vector(), comfy.get(name).to(got.dtype()).to_f32_vector()) << name;
  }
}

TEST(GgufModels, Qwen3ConfigComesFromTheMetadata) {
  const io::WeightStore gguf = io::WeightStore::open(kQwen3Gguf);
  ASSERT_NE(gguf.gguf_header(), nullptr);
  const Qwen3Config c = Qwen3Config::from_gguf(*gguf.gguf_header(), 1000, "tiny.gguf");
  EXPECT_EQ(c.summary(),
            "vocab 1000 hidden 48 intermediate 80 layers 4 heads 4 kv heads 2 head_dim 16 "
            "rope_theta 1000000 eps 1e-06");
  const DetectedComponent found = detect_component(gguf).value_or(DetectedComponent{});
  EXPECT_EQ(found.architecture, "qwen3 text encoder");
  EXPECT_THAT(found.layout, HasSubstr("GGUF (architecture qwen3"));
  EXPECT_THAT(found.config, HasSubstr("layers 4"));
}

// F16 / BF16 projections: the bf16 argument of test_qwen3 (cosine 0.999 against the float32
// transformers output) covers both, F16 keeping more mantissa than BF16.
TEST(GgufModels, Qwen3EncoderFromGgufMatchesTransformers) {
  const Qwen3TextEncoder encoder = load_qwen3_text_encoder(kQwen3Gguf);
  const io::SafetensorsFile io = io::SafetensorsFile::open(kQwen3Io);
  for (int n : {1, 7, 33, 100}) {
    const Tensor ids_t = io.tensor(fmt::format("ids_len{}", n));
    const std::vector<int32_t> ids(ids_t.data<int32_t>(), ids_t.data<int32_t>() + ids_t.numel());
    EXPECT_GE(test::cosine(encoder.encode(ids), io.tensor(fmt::format("out_len{}", n))), 0.999)
        << "length " << n;
  }
}

// Mistral as llama.cpp writes it ("llama", q / k rows permuted for its interleaved RoPE; all
// F32, tools/golden/make_mistral_gguf.py): the config from the llama.* keys, and the left-padded
// taps equal to transformers' on the original weights (mistral_tiny_diffusers_io) within the
// fp32 bound 1e-4. The encoder rotates interleaved pairs of the permuted rows; with the
// half-split RoPE on them the error is of order 1.
TEST(GgufModels, MistralLlamaGgufMatchesTransformers) {
  const fs::path path = test::fixture("gguf/mistral_tiny_llamacpp_weights.gguf");
  const io::WeightStore gguf = io::WeightStore::open(path);
  ASSERT_TRUE(io::has_llamacpp_qwen3_names(gguf));
  const DetectedComponent found = detect_component(gguf).value_or(DetectedComponent{});
  EXPECT_EQ(found.architecture, "mistral text encoder");
  EXPECT_THAT(found.config, HasSubstr("head_dim 16 rope_theta 10000"));
  EXPECT_THAT(found.config, HasSubstr("interleaved"));
  const Qwen3TextEncoder encoder = load_qwen3_text_encoder(path, std::nullopt, {}, {1, 2, 3});
  EXPECT_FALSE(encoder.config().qk_norm);
  EXPECT_TRUE(encoder.config().rope_interleaved);
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("mistral/mistral_tiny_diffusers_io.safetensors"));
  const Tensor ids = io.tensor("ids"), want = io.tensor("out"), lengths = io.tensor("lengths");
  for (int64_t b = 0; b < ids.size(0); ++b) {
    const Tensor row = ids.select(0, b).contiguous();
    const int64_t real = lengths.data<int32_t>()[b];
    const std::span<const int32_t> real_ids(row.data<int32_t>() + (row.numel() - real),
                                            static_cast<size_t>(real));
    EXPECT_LE(
        test::relative_error(encoder.encode_left_padded(real_ids, row.numel(), 11).select(0, 0),
                             want.select(0, b)),
        1e-4)
        << "row " << b;
  }
}

// A ComfyUI-GGUF style file of the tiny Z-Image: prefix-free original names, "lumina2",
// matrices whose rows are whole blocks in `matrix_type`, everything else as stored (bf16)
// or, for 1-D tensors as ComfyUI-GGUF keeps them, F32.
fs::path write_zimage_gguf(const fs::path& dir, DType matrix_type) {
  const io::WeightStore original = io::WeightStore::open(kZImageOriginal);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : original.names()) {
    const Tensor t = original.get(name);
    const bool quantise = dtype_is_quantized(matrix_type) && t.ndim() == 2 &&
                          t.size(1) % dtype_block_size(matrix_type) == 0;
    tensors.emplace_back(name, quantise ? t.to(matrix_type)
                               : t.ndim() == 1 && dtype_is_quantized(matrix_type) ? t.to(DType::F32)
                                                                                  : t);
  }
  const fs::path path = dir / fmt::format("zimage_tiny_{}.gguf", dtype_name(matrix_type));
  io::write_gguf(path, {{"general.architecture", io::GgufValue::of_string("lumina2")}}, tensors);
  return path;
}

ZImageDiTConfig zimage_tiny_config() {
  return ZImageDiTConfig::from_json_file(
      test::fixture("zimage_dit/tiny_diffusers/transformer/config.json"));
}

const char* kZImageCases[] = {"sq8_cap1_t0", "h6w10_cap31_t03", "batch_sq8_cap33_cap5"};

Tensor run_case(const ZImageTransformer& model, const io::SafetensorsFile& io,
                const std::string& name) {
  const std::vector<float> t = io.tensor(name + ".t").to_f32_vector();
  std::vector<Tensor> captions;
  for (size_t i = 0; i < t.size(); ++i)
    captions.push_back(io.tensor(fmt::format("{}.caption{}", name, i)));
  return model.forward(io.tensor(name + ".latents"), t, captions);
}

// The same bf16 weights through GGUF as through the safetensors file: the diffusers output
// with bf16 weights, within the float32 tolerance of test_zimage_dit.
TEST(GgufModels, ZImageBf16GgufMatchesDiffusers) {
  TempDir dir;
  const fs::path path = write_zimage_gguf(dir.path, DType::BF16);
  const io::WeightStore store = io::WeightStore::open(path);
  const DetectedComponent found = detect_component(store).value_or(DetectedComponent{});
  EXPECT_EQ(found.architecture, "z-image transformer");
  EXPECT_THAT(found.layout, HasSubstr("GGUF (architecture lumina2"));
  EXPECT_THAT(found.layout, HasSubstr("original"));
  const ZImageTransformer model = load_zimage_transformer(store, zimage_tiny_config());
  const io::SafetensorsFile io = io::SafetensorsFile::open(kZImageIo);
  for (const char* name : kZImageCases)
    EXPECT_LE(test::relative_error(run_case(model, io, name),
                                   io.tensor(std::string(name) + ".output_bf16w")),
              1e-4)
        << name;
}

// Q8_0 matrices kept quantised through the whole forward must give what the same weights
// dequantised to float32 give (the definition), within float32 accumulation error (1e-4 of
// the output's scale, as every fp32 golden); and stay close to the float32 model (cosine
// 0.999: Q8_0's step is 1/127 of a block's largest weight, about bf16's relative error).
TEST(GgufModels, ZImageQ8_0GgufEqualsItsDequantisedWeights) {
  TempDir dir;
  const io::WeightStore store = io::WeightStore::open(write_zimage_gguf(dir.path, DType::Q8_0));
  EXPECT_EQ(store.get("layers.0.attention.qkv.weight").dtype(), DType::Q8_0);
  EXPECT_THAT(detect_component(store).value_or(DetectedComponent{}).layout, HasSubstr("Q8_0"));
  io::WeightStore dequantised;
  for (const std::string& name : store.names())
    dequantised.add(name, store.get(name).to(DType::F32));
  const ZImageTransformer quantised = load_zimage_transformer(store, zimage_tiny_config());
  const ZImageTransformer reference = load_zimage_transformer(dequantised, zimage_tiny_config());
  const io::SafetensorsFile io = io::SafetensorsFile::open(kZImageIo);
  for (const char* name : kZImageCases) {
    const Tensor out = run_case(quantised, io, name);
    EXPECT_LE(test::relative_error(out, run_case(reference, io, name)), 1e-4) << name;
    EXPECT_GE(test::cosine(out, io.tensor(std::string(name) + ".output")), 0.999) << name;
  }
}

// How far each 32-block quantisation moves the tiny transformer from the diffusers output with
// its bf16 weights (the tiny model's rows of 64 hold no 256-value k-quant block; full-size
// figures for every type are in bench/README.md). A b-bit block's step is its largest weight
// over 2^(b-1) - 1, so each bit fewer roughly doubles the error: Q8_0 < Q5_0 < Q4_0 and
// Q5_1 < Q4_1 on every case, recorded for the table.
TEST(GgufModels, ZImageQuantisationErrorGrowsAsBitsDrop) {
  TempDir dir;
  const io::SafetensorsFile io = io::SafetensorsFile::open(kZImageIo);
  std::map<DType, double> worst;
  for (DType type : {DType::Q8_0, DType::Q5_0, DType::Q5_1, DType::Q4_0, DType::Q4_1}) {
    const ZImageTransformer model = load_zimage_transformer(
        io::WeightStore::open(write_zimage_gguf(dir.path, type)), zimage_tiny_config());
    for (const char* name : kZImageCases) {
      const double err = test::relative_error(run_case(model, io, name),
                                              io.tensor(std::string(name) + ".output_bf16w"));
      worst[type] = std::max(worst[type], err);
    }
    RecordProperty(std::string(dtype_name(type)), fmt::format("{:.3e}", worst[type]));
  }
  EXPECT_LT(worst[DType::Q8_0], worst[DType::Q5_0]);
  EXPECT_LT(worst[DType::Q5_0], worst[DType::Q4_0]);
  EXPECT_LT(worst[DType::Q5_1], worst[DType::Q4_1]);
}

}  // namespace
}  // namespace zflow::models
