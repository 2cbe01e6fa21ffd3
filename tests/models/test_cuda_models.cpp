// The Z-Image models (Qwen3, transformer, autoencoder), the FLUX.1 ones (CLIP-L, T5,
// transformer) and the FLUX.2 ones (transformer, autoencoder) on the GPU against the same goldens
// the CPU tests use (diffusers / transformers in float32, tools/golden/make_*.py), with weights
// placed on the device once (models/placement.h). Skipped without a CUDA device. Tolerances:
//  - bf16 activations and weights (the GPU default): cosine >= 0.999 against the float32
//    golden, the bound the CPU tests hold bf16 weights to (test_zimage_dit, test_qwen3): bf16
//    keeps 8 bits of mantissa, each rounding costs up to 0.2%, and through a few blocks the
//    errors add up to well under 1% of the output's norm; max error <= 5e-2 of the output's
//    scale so that a few wrong elements (an indexing bug) cannot hide in a good cosine.
//  - float32 activations and weights on the GPU: 1e-4 relative, the CPU's own bound against
//    the goldens (DESIGN.md); the GPU differs only in summation order (GEMMs, attention, norms).
//    This run separates a kernel bug from bf16 rounding.
//  - quantised (Q8_0) weights, kept quantised on the device and dequantised to bf16 by each
//    linear, against the CPU running the same Q8_0 weights: cosine >= 0.999 (bf16 rounding of
//    the dequantised values and activations).
//  - --offload: streamed blocks run the same kernels on the same weights as resident ones, so
//    their outputs are equal bit for bit (cuBLASLt and our kernels are deterministic on one
//    stream); any difference is a block read before its upload or after its slot was reused.
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "backend/cuda_test_util.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/esrgan.h"
#include "models/flux2_autoencoder.h"
#include "models/flux2_dit.h"
#include "models/flux_controlnet.h"
#include "models/flux_dit.h"
#include "models/qwen3.h"
#include "models/t5_encoder.h"
#include "models/upscaler.h"
#include "models/zimage_controlnet.h"
#include "models/zimage_dit.h"
#include "test_util.h"

namespace zflow::models {
namespace {

namespace fs = std::filesystem;

constexpr double kF32Tolerance = 1e-4;
constexpr double kMinCosine = 0.999;
constexpr double kBf16MaxErr = 5e-2;

// `got` (float32 on the CPU, from a GPU model) against the float32 golden `want`.
void expect_close(const Tensor& got, const Tensor& want, DType act, const std::string& what) {
  ASSERT_EQ(got.device(), Device::CPU) << what;
  ASSERT_EQ(got.dtype(), DType::F32) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const test::Comparison c = test::compare(got.to_f32_vector(), want.to_f32_vector());
  std::printf("  %s (%s): max err %.2e, cosine %.6f\n", what.c_str(),
              std::string(dtype_name(act)).c_str(), c.max_err, c.cosine);
  if (act == DType::F32) {
    EXPECT_LE(c.max_err, kF32Tolerance) << what;
  } else {
    EXPECT_GE(c.cosine, kMinCosine) << what;
    EXPECT_LE(c.max_err, kBf16MaxErr) << what;
  }
}

// ---- Z-Image transformer -------------------------------------------------------------------

const fs::path kDitFolder = test::fixture("zimage_dit/tiny_diffusers/transformer");
const fs::path kDitIo = test::fixture("zimage_dit/zimage_dit_tiny_diffusers_io.safetensors");
const std::vector<std::string> kDitCases = {
    "sq8_cap1_t0",    "h6w10_cap31_t03",      "sq8_cap32_t097",        "h16w6_cap33_t05",
    "sq8_cap100_t03", "batch_sq8_cap33_cap5", "batch_h6w10_cap5_cap20"};

struct DitCase {
  Tensor latents, output;
  std::vector<float> t;
  std::vector<Tensor> captions;
};

DitCase dit_case(const io::SafetensorsFile& io, const std::string& name) {
  DitCase c{io.tensor(name + ".latents"),
            io.tensor(name + ".output"),
            io.tensor(name + ".t").to_f32_vector(),
            {}};
  for (size_t i = 0; i < c.t.size(); ++i)
    c.captions.push_back(io.tensor(fmt::format("{}.caption{}", name, i)));
  return c;
}

TEST(CudaModels, ZImageDiTMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kDitIo);
  for (DType act : {DType::F32, DType::BF16}) {
    const ZImageTransformer model =
        load_zimage_transformer(kDitFolder, std::nullopt, Placement::cuda(act));
    for (const std::string& name : kDitCases) {
      const DitCase c = dit_case(io, name);
      expect_close(model.forward(c.latents, c.t, c.captions), c.output, act, "zimage " + name);
    }
  }
}

// Omni mode (tools/golden/make_zimage_omni.py): two condition images with SigLIP grids, a ragged
// batch of two; the clean rows' modulation splits each block's norms at one row.
TEST(CudaModels, ZImageOmniMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const fs::path dir = test::fixture("zimage_omni");
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(dir / "zimage_omni_transformer_io.safetensors");
  const std::vector<float> t = io.tensor("t").to_f32_vector();
  std::vector<std::vector<Tensor>> captions(2);
  for (int b = 0; b < 2; ++b)
    for (int j = 0; j < 4; ++j) captions[b].push_back(io.tensor(fmt::format("caption{}.{}", b, j)));
  const std::vector<ZImageOmniCondition> conditions = {{io.tensor("cond0"), io.tensor("siglip0")},
                                                       {io.tensor("cond1"), io.tensor("siglip1")}};
  const Tensor latents = Tensor::from_f32({2, 16, 6, 8}, [&] {
    std::vector<float> v = io.tensor("target0").to_f32_vector();
    const std::vector<float> w = io.tensor("target1").to_f32_vector();
    v.insert(v.end(), w.begin(), w.end());
    return v;
  }());
  for (DType act : {DType::F32, DType::BF16}) {
    const ZImageTransformer model = load_zimage_transformer(dir / "tiny_omni" / "transformer",
                                                            std::nullopt, Placement::cuda(act));
    const Tensor out = model.forward_omni(latents, t, captions, conditions).to(Device::CPU);
    for (int b = 0; b < 2; ++b)
      expect_close(out.select(0, b).contiguous(), io.tensor(fmt::format("out{}", b)), act,
                   fmt::format("zimage omni {}", b));
  }
}

// ComfyUI's int8 file (tools/golden/make_int8_weights.py) on the GPU: its int8 layers are
// dequantised as they are placed (no W8A8 kernel runs there yet), so the reference is the CPU
// running the same dequantised weights (Tensor::to applies the row scales and the rotation).
TEST(CudaModels, ZImageInt8FileRunsDequantised) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kDitIo);
  const ZImageDiTConfig config = ZImageDiTConfig::from_json_file(kDitFolder / "config.json");
  const io::WeightStore int8 =
      io::WeightStore::open(test::fixture("zimage_dit/zimage_dit_tiny_comfy_int8.safetensors"));
  io::WeightStore dequantised = int8;
  for (const std::string& name : int8.names())
    if (!int8.get(name).row_scales().empty())
      dequantised.replace(name, int8.get(name).to(DType::F32));
  const ZImageTransformer cpu = load_zimage_transformer(dequantised, config);
  for (DType act : {DType::F32, DType::BF16}) {
    const ZImageTransformer gpu = load_zimage_transformer(int8, config, Placement::cuda(act));
    for (const char* name : {"h6w10_cap31_t03", "batch_sq8_cap33_cap5"}) {
      const DitCase c = dit_case(io, name);
      expect_close(gpu.forward(c.latents, c.t, c.captions), cpu.forward(c.latents, c.t, c.captions),
                   act, std::string("int8 ") + name);
    }
  }
}

// Inputs already on the GPU (bf16 latents and captions) give a float32 result on the GPU.
TEST(CudaModels, ZImageDiTKeepsDeviceInputsOnTheDevice) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kDitIo);
  const ZImageTransformer model =
      load_zimage_transformer(kDitFolder, std::nullopt, Placement::cuda());
  const DitCase c = dit_case(io, "batch_sq8_cap33_cap5");
  std::vector<Tensor> captions;
  for (const Tensor& cap : c.captions) captions.push_back(cap.to(DType::BF16).to(Device::CUDA));
  const Tensor out = model.forward(c.latents.to(Device::CUDA), c.t, captions);
  EXPECT_EQ(out.device(), Device::CUDA);
  EXPECT_EQ(out.dtype(), DType::F32);
  expect_close(out.to(Device::CPU), c.output, DType::BF16, "zimage on device inputs");
}

// The ControlNet goldens (1.0, 2.0, 2.1 and a ragged batch) with the transformer and the
// ControlNet on the GPU, in float32 and bf16 activations.
TEST(CudaModels, ZImageControlNetMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const fs::path dir = test::fixture("zimage_controlnet");
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(dir / "zimage_controlnet_tiny_io.safetensors");
  for (DType act : {DType::F32, DType::BF16}) {
    const Placement at = Placement::cuda(act);
    const ZImageTransformer model =
        load_zimage_transformer(dir / "tiny_transformer", std::nullopt, at);
    for (const char* name : {"v1_sq8_cap5", "v20_sq8_cap5", "v21_batch_cap40_cap7"}) {
      const std::string n = name;
      const models::ZImageControlNet net = models::load_zimage_controlnet(
          dir / fmt::format("zimage_controlnet_tiny_{}.safetensors", n.substr(0, n.find('_'))),
          model.config(), at);
      const std::vector<float> t = io.tensor(n + ".t").to_f32_vector();
      std::vector<Tensor> captions;
      for (size_t i = 0; i < t.size(); ++i)
        captions.push_back(io.tensor(fmt::format("{}.caption{}", n, i)));
      const models::ZImageControl control{&net, io.tensor(n + ".control"),
                                          io.tensor(n + ".scale").to_f32_vector()[0]};
      expect_close(model.forward(io.tensor(n + ".latents"), t, captions, &control),
                   io.tensor(n + ".output"), act, "controlnet " + n);
    }
  }
}

// The tiny model's weights with Q8_0 matrices wherever a row is whole blocks.
io::WeightStore q8_0_where_rows_are_blocks(const io::WeightStore& folder) {
  io::WeightStore q8;
  for (const std::string& name : folder.names()) {
    const Tensor t = folder.get(name);
    const bool whole_blocks = t.ndim() == 2 && t.size(1) % dtype_block_size(DType::Q8_0) == 0;
    q8.add(name, whole_blocks ? t.to(DType::Q8_0) : t);
  }
  return q8;
}

// Block-quantised matrices (Q8_0 wherever a row is whole blocks) stay quantised on the GPU,
// each dequantised by its linear as it runs, as on the CPU.
TEST(CudaModels, ZImageDiTWithQuantisedWeights) {
  ZF_REQUIRE_GPU();
  const io::WeightStore folder = io::WeightStore::open(kDitFolder);
  const io::WeightStore q8 = q8_0_where_rows_are_blocks(folder);
  const ZImageDiTConfig config = ZImageDiTConfig::from_json_file(kDitFolder / "config.json");
  const ZImageTransformer cpu(config, q8);
  const ZImageTransformer gpu(config, q8, Placement::cuda());
  const io::SafetensorsFile io = io::SafetensorsFile::open(kDitIo);
  for (const char* name : {"sq8_cap1_t0", "batch_h6w10_cap5_cap20"}) {
    const DitCase c = dit_case(io, name);
    expect_close(gpu.forward(c.latents, c.t, c.captions), cpu.forward(c.latents, c.t, c.captions),
                 DType::BF16, fmt::format("zimage q8_0 {}", name));
  }
}

// ---- Qwen3 text encoder --------------------------------------------------------------------

const fs::path kQwenFolder = test::fixture("qwen3/tiny_diffusers/text_encoder");
const fs::path kQwenIo = test::fixture("qwen3/qwen3_tiny_diffusers_io.safetensors");
const fs::path kQwenGguf = test::fixture("gguf/qwen3_tiny_llamacpp_weights.gguf");

std::vector<int32_t> ids_of(const io::SafetensorsFile& io, const std::string& name) {
  const Tensor t = io.tensor(name);
  return {t.data<int32_t>(), t.data<int32_t>() + t.numel()};
}

TEST(CudaModels, Qwen3MatchesTransformers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kQwenIo);
  for (DType act : {DType::F32, DType::BF16}) {
    const Qwen3TextEncoder encoder =
        load_qwen3_text_encoder(kQwenFolder, std::nullopt, Placement::cuda(act));
    for (int n : {1, 7, 32, 33, 100})
      expect_close(encoder.encode(ids_of(io, fmt::format("ids_len{}", n))),
                   io.tensor(fmt::format("out_len{}", n)), act, fmt::format("qwen3 length {}", n));
    // The pipeline's padded batch of two prompts (causal plus key-length mask).
    const std::vector<Tensor> batch =
        encoder.encode_batch({ids_of(io, "batch_ids_0"), ids_of(io, "batch_ids_1")});
    for (size_t i = 0; i < batch.size(); ++i)
      expect_close(batch[i], io.tensor(fmt::format("batch_out_{}", i)), act,
                   fmt::format("qwen3 batch row {}", i));
  }
}

// A llama.cpp GGUF (F16 / BF16 projections, llama.cpp names) put on the GPU.
TEST(CudaModels, Qwen3FromGgufMatchesTransformers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kQwenIo);
  const Qwen3TextEncoder encoder =
      load_qwen3_text_encoder(kQwenGguf, std::nullopt, Placement::cuda());
  for (int n : {7, 100})
    expect_close(encoder.encode(ids_of(io, fmt::format("ids_len{}", n))),
                 io.tensor(fmt::format("out_len{}", n)), DType::BF16,
                 fmt::format("qwen3 gguf length {}", n));
}

// ---- FLUX.1 transformer --------------------------------------------------------------------

const fs::path kFluxFolder = test::fixture("flux_dit/tiny_dev_diffusers/transformer");
const fs::path kFluxComfy = test::fixture("flux_dit/flux_dit_tiny_schnell_comfy_bf16.safetensors");
const fs::path kFluxIo = test::fixture("flux_dit/flux_dit_tiny_diffusers_io.safetensors");

// A case's inputs (the outputs differ by fixture).
struct FluxCase {
  Tensor x, txt, pooled;
  std::vector<float> t, guidance;
  std::vector<FluxPosition> ids;
};

FluxCase flux_case(const io::SafetensorsFile& io, const std::string& name) {
  FluxCase c{io.tensor(name + ".hidden_states"),
             io.tensor(name + ".encoder_hidden_states"),
             io.tensor(name + ".pooled_projections"),
             io.tensor(name + ".timestep").to_f32_vector(),
             io.tensor(name + ".guidance").to_f32_vector(),
             {}};
  const std::vector<float> ids = io.tensor(name + ".img_ids").to_f32_vector();
  for (size_t i = 0; i + 2 < ids.size(); i += 3) c.ids.push_back({ids[i], ids[i + 1], ids[i + 2]});
  return c;
}

TEST(CudaModels, FluxDiTMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kFluxIo);
  for (DType act : {DType::F32, DType::BF16}) {
    const FluxTransformer model = load_flux_transformer(kFluxFolder, {}, {}, Placement::cuda(act));
    for (const char* name : {"h4w4_txt7", "h3w5_txt5_t1", "h5w2_txt9", "batch_h2w3_txt6"}) {
      const FluxCase c = flux_case(io, name);
      expect_close(model.forward(c.x, c.ids, c.txt, c.pooled, c.t, c.guidance),
                   io.tensor(std::string(name) + ".dev_output"), act,
                   fmt::format("flux dev {}", name));
    }
  }
}

// ComfyUI's schnell single file (BFL names, bf16 weights, no guidance embedder), with inputs
// already on the GPU in bf16: the result stays there, in float32.
TEST(CudaModels, FluxSchnellComfyFileOnDeviceInputs) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kFluxIo);
  // The tiny head dim (16) is not the release's, so the config comes from the fixture's folder.
  FluxDiTConfig schnell = FluxDiTConfig::from_json_file(kFluxFolder / "config.json");
  schnell.guidance_embeds = false;
  const FluxTransformer model = load_flux_transformer(kFluxComfy, schnell, {}, Placement::cuda());
  EXPECT_FALSE(model.config().guidance_embeds);
  const FluxCase c = flux_case(io, "batch_h2w3_txt6");
  auto on_gpu = [](const Tensor& t) { return t.to(DType::BF16).to(Device::CUDA); };
  const Tensor out = model.forward(on_gpu(c.x), c.ids, on_gpu(c.txt), on_gpu(c.pooled), c.t);
  EXPECT_EQ(out.device(), Device::CUDA);
  EXPECT_EQ(out.dtype(), DType::F32);
  expect_close(out.to(Device::CPU), io.tensor("batch_h2w3_txt6.schnell_output_bf16w"), DType::BF16,
               "flux schnell comfy");
}

// FLUX.1 ControlNets (Union with its mode token, plain, XLabs with its hint convolutions) and the
// transformer adding their samples, on the GPU (tools/golden/make_flux_controlnet.py).
TEST(CudaModels, FluxControlNetMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const fs::path dir = test::fixture("flux_controlnet");
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(dir / "flux_controlnet_tiny_diffusers_io.safetensors");
  const nlohmann::json cases = nlohmann::json::parse(io.metadata().at("cases"));
  for (DType act : {DType::F32, DType::BF16}) {
    const Placement at = Placement::cuda(act);
    const FluxTransformer model = load_flux_transformer(
        dir / "main_transformer.safetensors",
        FluxDiTConfig::from_json(io.metadata().at("main"), "main config"), {}, at);
    for (const auto& [name, spec] : cases.items()) {
      const models::FluxControlNet net =
          models::load_flux_controlnet(dir / spec[0].get<std::string>(), at);
      const FluxCase c = flux_case(io, name);
      const std::optional<int> mode =
          spec[5].is_null() ? std::nullopt : std::optional<int>(spec[5].get<int>());
      const auto samples =
          net.forward(c.x, c.ids, c.txt, c.pooled, c.t,
                      net.config().trunk.guidance_embeds ? c.guidance : std::vector<float>{},
                      io.tensor(name + ".cond"), mode, spec[6].get<float>());
      expect_close(model.forward(c.x, c.ids, c.txt, c.pooled, c.t, c.guidance, &samples),
                   io.tensor(name + ".output"), act, "flux controlnet " + name);
    }
  }
}

// ---- FLUX.2 transformer -------------------------------------------------------------------

const fs::path kFlux2Folder = test::fixture("flux2_dit/tiny_dev_diffusers/transformer");
const fs::path kFlux2Comfy = test::fixture("flux2_dit/flux2_dit_tiny_klein_comfy_bf16.safetensors");
const fs::path kFlux2Io = test::fixture("flux2_dit/flux2_dit_tiny_diffusers_io.safetensors");

struct Flux2Case {
  Tensor x, txt, dev, klein_bf16w;
  std::vector<float> t, guidance;
  std::vector<Flux2Position> ids;
};

Flux2Case flux2_case(const io::SafetensorsFile& io, const std::string& name) {
  Flux2Case c{io.tensor(name + ".hidden_states"),
              io.tensor(name + ".encoder_hidden_states"),
              io.tensor(name + ".dev_output"),
              io.tensor(name + ".klein_output_bf16w"),
              io.tensor(name + ".timestep").to_f32_vector(),
              io.tensor(name + ".guidance").to_f32_vector(),
              {}};
  const std::vector<float> ids = io.tensor(name + ".img_ids").to_f32_vector();
  for (size_t i = 0; i + 3 < ids.size(); i += 4)
    c.ids.push_back({ids[i], ids[i + 1], ids[i + 2], ids[i + 3]});
  return c;
}

TEST(CudaModels, Flux2DiTMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kFlux2Io);
  for (DType act : {DType::F32, DType::BF16}) {
    const Flux2Transformer model =
        load_flux2_transformer(kFlux2Folder, {}, {}, Placement::cuda(act));
    for (const char* name :
         {"h4w4_txt7", "h3w5_txt5_t1", "batch_h2w3_txt6", "ref_h2w3_r3x2_txt4"}) {
      const Flux2Case c = flux2_case(io, name);
      expect_close(model.forward(c.x, c.ids, c.txt, c.t, c.guidance), c.dev, act,
                   fmt::format("flux.2 dev {}", name));
    }
  }
}

// ComfyUI's klein single file (BFL names, bf16 weights, no guidance embedder), with inputs
// already on the GPU in bf16: the result stays there, in float32.
TEST(CudaModels, Flux2KleinComfyFileOnDeviceInputs) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kFlux2Io);
  Flux2DiTConfig klein = Flux2DiTConfig::from_json_file(kFlux2Folder / "config.json");
  klein.guidance_embeds = false;
  const Flux2Transformer model = load_flux2_transformer(kFlux2Comfy, klein, {}, Placement::cuda());
  const Flux2Case c = flux2_case(io, "batch_h2w3_txt6");
  auto on_gpu = [](const Tensor& t) { return t.to(DType::BF16).to(Device::CUDA); };
  const Tensor out = model.forward(on_gpu(c.x), c.ids, on_gpu(c.txt), c.t);
  EXPECT_EQ(out.device(), Device::CUDA);
  EXPECT_EQ(out.dtype(), DType::F32);
  expect_close(out.to(Device::CPU), c.klein_bf16w, DType::BF16, "flux.2 klein comfy");
}

// klein KV's reference cache (tools/golden/make_flux2_klein_kv.py): the references' keys and
// values kept on the GPU, read by an extract-time and a later forward.
TEST(CudaModels, Flux2KleinKvCacheMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const fs::path dir = test::fixture("flux2_pipeline");
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(dir / "flux2_kv_tiny_diffusers_transformer_io.safetensors");
  const std::vector<Flux2Position> ref_ids = flux2_image_ids(4, 5, 10.0f);
  const std::vector<Flux2Position> img_ids = flux2_image_ids(3, 4);
  for (DType act : {DType::F32, DType::BF16}) {
    const Flux2Transformer model = load_flux2_transformer(dir / "tiny_klein" / "transformer",
                                                          std::nullopt, {}, Placement::cuda(act));
    const Flux2ReferenceCache cache = model.reference_cache(io.tensor("refs"), ref_ids, 0.0f);
    expect_close(model.forward(io.tensor("img"), img_ids, io.tensor("txt"),
                               std::vector<float>{0.8f, 0.8f}, {}, &cache),
                 io.tensor("extract"), act, "flux.2 klein kv extract");
    expect_close(model.forward(io.tensor("img_later"), img_ids, io.tensor("txt"),
                               std::vector<float>{0.3f, 0.3f}, {}, &cache),
                 io.tensor("cached"), act, "flux.2 klein kv cached");
  }
}

// ---- FLUX.1 text encoders ------------------------------------------------------------------

const fs::path kT5Folder = test::fixture("t5/tiny_diffusers/text_encoder_2");
const fs::path kT5Io = test::fixture("t5/t5_tiny_diffusers_io.safetensors");
const fs::path kClipFolder = test::fixture("clip/tiny_diffusers/text_encoder");
const fs::path kClipIo = test::fixture("clip/clip_tiny_diffusers_io.safetensors");

TEST(CudaModels, T5MatchesTransformers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kT5Io);
  for (DType act : {DType::F32, DType::BF16}) {
    const T5Encoder encoder = load_t5_encoder(kT5Folder, {}, Placement::cuda(act));
    for (int n : {1, 9, 40, 300})
      expect_close(encoder.encode(ids_of(io, fmt::format("ids_len{}", n))),
                   io.tensor(fmt::format("out_len{}", n)), act, fmt::format("t5 length {}", n));
  }
}

TEST(CudaModels, ClipTextMatchesTransformers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kClipIo);
  for (DType act : {DType::F32, DType::BF16}) {
    const ClipTextModel model = load_clip_text_model(kClipFolder, {}, Placement::cuda(act));
    for (int n = 0; n < 3; ++n) {
      const ClipTextOutput out = model.encode(ids_of(io, fmt::format("ids_{}", n)));
      expect_close(out.last_hidden_state, io.tensor(fmt::format("last_hidden_state_{}", n)), act,
                   fmt::format("clip case {}", n));
      expect_close(out.pooled, io.tensor(fmt::format("pooled_{}", n)), act,
                   fmt::format("clip pooled {}", n));
    }
  }
}

// ---- Autoencoder ---------------------------------------------------------------------------

const fs::path kVaeFolder = test::fixture("autoencoder/tiny_diffusers/vae");
const fs::path kVaeIo = test::fixture("autoencoder/autoencoder_tiny_diffusers_io.safetensors");

TEST(CudaModels, AutoencoderMatchesDiffusers) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(kVaeIo);
  for (DType act : {DType::F32, DType::BF16}) {
    const AutoencoderKL vae = load_autoencoder_kl(kVaeFolder, std::nullopt, Placement::cuda(act));
    const AutoencoderKL::Posterior p = vae.encode(io.tensor("image"));
    expect_close(p.mean, io.tensor("posterior_mean"), act, "vae posterior mean");
    expect_close(p.logvar, io.tensor("posterior_logvar"), act, "vae posterior logvar");
    expect_close(vae.decode(io.tensor("z")), io.tensor("decoded"), act, "vae decode");
  }
}

// ---- ESRGAN upscalers ----------------------------------------------------------------------

TEST(CudaModels, EsrganMatchesSpandrel) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io =
      io::SafetensorsFile::open(test::fixture("esrgan/esrgan_io.safetensors"));
  for (DType act : {DType::F32, DType::BF16})
    for (const auto& [name, file] :
         {std::pair{"x4", "x4_basicsr"}, {"x2", "x2_basicsr"}, {"plus_x4", "plus_x4_original"}}) {
      const Esrgan model = load_esrgan(
          test::fixture(fmt::format("esrgan/esrgan_{}.safetensors", file)), Placement::cuda(act));
      expect_close(model.upscale(io.tensor("image")), io.tensor(std::string(name) + "_output"), act,
                   std::string("esrgan ") + name);
    }
}

// Real-ESRGAN Compact and SPAN: their convs and activations on the GPU, the pixel shuffle (and
// Compact's residual, SPAN's input norm) on the host.
TEST(CudaModels, CompactAndSpanUpscalersMatchSpandrel) {
  ZF_REQUIRE_GPU();
  struct Case {
    const char *io, *file, *output;
  };
  for (DType act : {DType::F32, DType::BF16})
    for (const Case& c : {Case{"compact_upscaler/compact_io",
                               "compact_upscaler/compact_x4_params.pth", "x4_output"},
                          Case{"compact_upscaler/compact_io",
                               "compact_upscaler/compact_x2.safetensors", "x2_output"},
                          Case{"span/span_io", "span/span_x4.safetensors", "x4_output"},
                          Case{"span/span_io", "span/span_x2_no_norm.pth", "x2_output"}}) {
      const io::SafetensorsFile io =
          io::SafetensorsFile::open(test::fixture(std::string(c.io) + ".safetensors"));
      const auto model = load_upscaler(test::fixture(c.file), Placement::cuda(act));
      expect_close(model->upscale(io.tensor("image")), io.tensor(c.output), act, c.file);
    }
}

// FLUX.2's autoencoder: the KL network on the GPU, the patchify and BatchNorm on the host.
TEST(CudaModels, Flux2AutoencoderMatchesPipeline) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile io = io::SafetensorsFile::open(
      test::fixture("flux2_autoencoder/flux2_autoencoder_tiny_diffusers_io.safetensors"));
  for (DType act : {DType::F32, DType::BF16}) {
    const Flux2Autoencoder ae = load_flux2_autoencoder(
        test::fixture("flux2_autoencoder/tiny_diffusers/vae"), Placement::cuda(act));
    expect_close(ae.encode(io.tensor("image")), io.tensor("encoded"), act, "flux.2 ae encode");
    expect_close(ae.decode(io.tensor("z")), io.tensor("decoded"), act, "flux.2 ae decode");
  }
}

TEST(CudaModels, RandomWeightsMadeOnTheDeviceRun) {
  ZF_REQUIRE_GPU();
  const AutoencoderKLConfig config =
      AutoencoderKLConfig::from_json_file(kVaeFolder / "config.json");
  const io::WeightStore weights =
      autoencoder_kl_random_weights(config, DType::BF16, 1, Device::CUDA);
  EXPECT_EQ(weights.get("decoder.conv_in.weight").device(), Device::CUDA);
  const AutoencoderKL vae(config, weights, Placement::cuda());
  const Tensor image = vae.decode(Tensor::zeros({1, config.latent_channels, 4, 6}, DType::F32));
  EXPECT_EQ(image.shape(), (Shape{1, config.out_channels, 32, 48}));
  for (float v : image.to_f32_vector()) ASSERT_TRUE(std::isfinite(v));
}

// ---- --offload ------------------------------------------------------------------------------

Placement offloaded() {
  Placement p = Placement::cuda();
  p.offload = true;
  return p;
}

void expect_identical(const Tensor& got, const Tensor& want, const std::string& what) {
  const std::vector<float> g = got.to_f32_vector(), w = want.to_f32_vector();
  ASSERT_EQ(g.size(), w.size()) << what;
  size_t differ = 0;
  for (size_t i = 0; i < g.size(); ++i) differ += std::memcmp(&g[i], &w[i], 4) != 0;
  EXPECT_EQ(differ, 0u) << what << ": " << differ << " of " << g.size() << " values differ";
}

// Each model twice in a row: the second forward starts from the blocks the first prefetched
// past its end (the stream wraps around to block 0).
TEST(CudaModels, OffloadedBlocksComputeWhatResidentOnesDo) {
  ZF_REQUIRE_GPU();
  // Z-Image in bf16 and with Q8_0 matrices (quantised bytes cross the bus).
  const io::WeightStore folder = io::WeightStore::open(kDitFolder);
  const io::WeightStore q8 = q8_0_where_rows_are_blocks(folder);
  const ZImageDiTConfig config = ZImageDiTConfig::from_json_file(kDitFolder / "config.json");
  const DitCase dc = dit_case(io::SafetensorsFile::open(kDitIo), "batch_h6w10_cap5_cap20");
  for (const io::WeightStore* w : {&folder, &q8}) {
    const Tensor want =
        ZImageTransformer(config, *w, Placement::cuda()).forward(dc.latents, dc.t, dc.captions);
    const ZImageTransformer streamed(config, *w, offloaded());
    for (int run = 0; run < 2; ++run)
      expect_identical(streamed.forward(dc.latents, dc.t, dc.captions), want,
                       fmt::format("zimage {} run {}", w == &q8 ? "q8_0" : "bf16", run));
  }

  const std::vector<int32_t> qwen_ids = ids_of(io::SafetensorsFile::open(kQwenIo), "ids_len33");
  const Tensor qwen_want =
      load_qwen3_text_encoder(kQwenFolder, std::nullopt, Placement::cuda()).encode(qwen_ids);
  const Qwen3TextEncoder qwen = load_qwen3_text_encoder(kQwenFolder, std::nullopt, offloaded());
  for (int run = 0; run < 2; ++run)
    expect_identical(qwen.encode(qwen_ids), qwen_want, fmt::format("qwen3 run {}", run));

  const FluxCase fc = flux_case(io::SafetensorsFile::open(kFluxIo), "batch_h2w3_txt6");
  const Tensor flux_want = load_flux_transformer(kFluxFolder, {}, {}, Placement::cuda())
                               .forward(fc.x, fc.ids, fc.txt, fc.pooled, fc.t, fc.guidance);
  const FluxTransformer flux = load_flux_transformer(kFluxFolder, {}, {}, offloaded());
  for (int run = 0; run < 2; ++run)
    expect_identical(flux.forward(fc.x, fc.ids, fc.txt, fc.pooled, fc.t, fc.guidance), flux_want,
                     fmt::format("flux run {}", run));

  const std::vector<int32_t> t5_ids = ids_of(io::SafetensorsFile::open(kT5Io), "ids_len40");
  const Tensor t5_want = load_t5_encoder(kT5Folder, {}, Placement::cuda()).encode(t5_ids);
  const T5Encoder t5 = load_t5_encoder(kT5Folder, {}, offloaded());
  for (int run = 0; run < 2; ++run)
    expect_identical(t5.encode(t5_ids), t5_want, fmt::format("t5 run {}", run));
}

}  // namespace
}  // namespace zflow::models
