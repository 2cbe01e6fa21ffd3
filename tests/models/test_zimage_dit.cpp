// ZImageTransformer against diffusers 0.42.1 ZImageTransformer2DModel on the tiny random
// config of tools/golden/make_zimage_dit.py (dim 64, 2 layers, 1 + 1 refiner layers, 2
// heads, cap_feat_dim 32, axes_dims [8, 12, 12], random pad tokens and norm weights).
// Cases: 8x8, 6x10 and 16x6 latents, caption lengths 1, 31, 32, 33, 100, t in {0, 0.3, 0.5,
// 0.6, 0.97}, and two batches of two samples with different caption lengths.
// Tolerances:
//  - fp32 weights vs diffusers fp32: max |got - want| / max |want| <= 1e-4, the project's
//    fp32-CPU-versus-torch bound (DESIGN.md): float32 summation order through 4 blocks.
//  - the bf16 single file vs diffusers run with the same bf16-rounded weights in fp32: the
//    same 1e-4 (the weights are identical values, only their storage differs).
//  - fp32 weights rounded to bf16 vs the fp32 reference: cosine >= 0.999, the bound the
//    real bf16 checkpoints are held to (weights rounded to 8 bits of mantissa).
//  - a batch vs its samples one at a time: 1e-5 relative (masked keys contribute exactly 0;
//    only the GEMM blocking of different row counts differs).
#include "models/zimage_dit.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <set>

#include "backend/ops.h"
#include "core/error.h"
#include "core/rng.h"
#include "io/key_map_zimage.h"
#include "io/safetensors.h"
#include "models/zimage_rope.h"
#include "models/zimage_tokens.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::cosine;
using test::relative_error;

using models::ZImageDiTConfig;
using models::ZImageTransformer;

const std::filesystem::path kFolder = test::fixture("zimage_dit/tiny_diffusers/transformer");
const std::filesystem::path kOriginal =
    test::fixture("zimage_dit/zimage_dit_tiny_original_bf16.safetensors");
const std::filesystem::path kIo =
    test::fixture("zimage_dit/zimage_dit_tiny_diffusers_io.safetensors");

constexpr double kTolerance = 1e-4;
const std::vector<std::string> kCases = {
    "sq8_cap1_t0",    "h6w10_cap31_t03",      "sq8_cap32_t097",        "h16w6_cap33_t05",
    "sq8_cap100_t03", "batch_sq8_cap33_cap5", "batch_h6w10_cap5_cap20"};

struct Case {
  Tensor latents;
  std::vector<float> t;
  std::vector<Tensor> captions;
  Tensor output, output_bf16w;
};

struct Golden {
  io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  Case get(const std::string& name) const {
    Case c;
    c.latents = file.tensor(name + ".latents");
    c.t = file.tensor(name + ".t").to_f32_vector();
    for (size_t i = 0; i < c.t.size(); ++i)
      c.captions.push_back(file.tensor(fmt::format("{}.caption{}", name, i)));
    c.output = file.tensor(name + ".output");
    c.output_bf16w = file.tensor(name + ".output_bf16w");
    return c;
  }
};

ZImageDiTConfig tiny_config() {
  return ZImageDiTConfig::from_json_file(kFolder / "config.json");
}

Tensor run(const ZImageTransformer& model, const Case& c) {
  return model.forward(c.latents, c.t, c.captions);
}

TEST(ZImageDiT, FixtureIsCurrent) {
  const Golden g;
  EXPECT_EQ(g.file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(g.file.metadata().at("generator"), "tools/golden/make_zimage_dit.py");
}

TEST(ZImageDiT, ConfigFromJson) {
  const ZImageDiTConfig c = tiny_config();
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.n_refiner_layers, 1);
  EXPECT_EQ(c.n_heads, 2);
  EXPECT_EQ(c.cap_feat_dim, 32);
  EXPECT_EQ(c.axes_dims, (std::vector<int64_t>{8, 12, 12}));
  EXPECT_EQ(c.axes_lens, (std::vector<int64_t>{256, 64, 64}));
  EXPECT_EQ(c.ffn_dim(), 170);  // int(64 / 3 * 8)
  EXPECT_EQ(c.siglip_feat_dim, 0);
  EXPECT_EQ(ZImageDiTConfig::from_json(R"({"siglip_feat_dim": 1152})", "omni.json").siglip_feat_dim,
            1152);
  EXPECT_THROW(ZImageDiTConfig::from_json(R"({"axes_dims": [8, 8, 8]})", "bad.json"), Error);
}

// The release: 521 tensors, 6,154,908,736 parameters (facts/zimage.md section 1.2, counted
// from the module definitions), FFN 10240, adaLN 256.
TEST(ZImageDiT, ReleaseParameterList) {
  const ZImageDiTConfig c;
  EXPECT_EQ(c.ffn_dim(), 10240);
  EXPECT_EQ(c.head_dim(), 128);
  const auto params = models::zimage_dit_parameters(c);
  EXPECT_EQ(params.size(), 521u);
  int64_t total = 0;
  for (const auto& p : params) total += shape_numel(p.shape);
  EXPECT_EQ(total, 6'154'908'736);
}

// The parameter list is exactly the tensors diffusers saved for the tiny config.
TEST(ZImageDiT, ParameterListMatchesDiffusersCheckpoint) {
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const auto params = models::zimage_dit_parameters(tiny_config());
  std::set<std::string> names;
  for (const auto& p : params) {
    names.insert(p.name);
    ASSERT_TRUE(store.contains(p.name)) << p.name;
    EXPECT_EQ(store.get(p.name).shape(), p.shape) << p.name;
  }
  EXPECT_EQ(names.size(), store.size());
}

TEST(ZImageDiT, DiffusersFolderMatchesDiffusers) {
  const ZImageTransformer model = models::load_zimage_transformer(kFolder);
  EXPECT_EQ(model.config().dim, 64);  // read from config.json
  const Golden g;
  for (const auto& name : kCases) {
    const Case c = g.get(name);
    const double err = relative_error(run(model, c), c.output);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

TEST(ZImageDiT, IndexFileAndModelFolderLoad) {
  const Golden g;
  const Case c = g.get("h6w10_cap31_t03");
  for (const auto& path :
       {kFolder / "diffusion_pytorch_model.safetensors.index.json", kFolder.parent_path()}) {
    const ZImageTransformer model = models::load_zimage_transformer(path);
    EXPECT_EQ(model.config().axes_dims, (std::vector<int64_t>{8, 12, 12})) << path;
    EXPECT_LE(relative_error(run(model, c), c.output), kTolerance) << path;
  }
}

// Offloading streams blocks to a GPU: a CPU placement asking for it is an error naming it (and a
// CPU-only build refuses a GPU one, naming the missing CUDA backend).
TEST(ZImageDiT, OffloadIsRefusedWithoutAGpu) {
  models::Placement cpu;
  cpu.offload = true;
  try {
    models::load_zimage_transformer(kFolder, std::nullopt, cpu);
    FAIL() << "loaded with offload on the CPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--offload"), std::string::npos) << e.what();
  }
}

TEST(ZImageDiT, OriginalSingleFileMatchesDiffusers) {
  const io::WeightStore store = io::WeightStore::open(kOriginal);
  EXPECT_EQ(io::detect_zimage_layout(store), io::ZImageLayout::Original);
  EXPECT_EQ(store.get("layers.0.attention.qkv.weight").dtype(), DType::BF16);
  const ZImageTransformer model = models::load_zimage_transformer(kOriginal, tiny_config());
  const Golden g;
  for (const auto& name : kCases) {
    const Case c = g.get(name);
    const double err = relative_error(run(model, c), c.output_bf16w);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// With bfloat16 matmuls (vdpbf16ps, where the processor has it) the transformer stays within
// bfloat16 rounding of the float32 reference.
TEST(ZImageDiT, Bfloat16MatmulsStayWithinRounding) {
  const ZImageTransformer model = models::load_zimage_transformer(kOriginal, tiny_config());
  const test::ScopedMatmulPrecision bf16(cpu::MatmulPrecision::Bfloat16);
  const Golden g;
  for (const auto& name : kCases) {
    const Case c = g.get(name);
    const double err = relative_error(run(model, c), c.output_bf16w);
    EXPECT_LE(err, test::kBfloat16MatmulTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// ComfyUI full checkpoints keep the transformer under `model.diffusion_model.` next to
// other components, and may carry an unused `norm_final.weight`.
TEST(ZImageDiT, ComfyPrefixIsStrippedAndNormFinalDropped) {
  io::WeightStore checkpoint = io::WeightStore::open(kOriginal).renamed(
      [](const std::string& n) -> std::optional<std::string> {
        return "model.diffusion_model." + n;
      });
  checkpoint.add("model.diffusion_model.norm_final.weight", Tensor::zeros({64}, DType::F32));
  checkpoint.add("text_encoders.qwen3_4b.transformer.model.norm.weight",
                 Tensor::zeros({4}, DType::F32));
  const ZImageTransformer model = models::load_zimage_transformer(checkpoint, tiny_config());
  const Case c = Golden{}.get("sq8_cap32_t097");
  EXPECT_LE(relative_error(run(model, c), c.output_bf16w), kTolerance);
}

// The fused qkv becomes three row views of the mapped file, not copies.
TEST(ZImageDiT, FusedQkvIsSplitIntoViews) {
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  const io::WeightStore named =
      io::original_zimage_to_diffusers(original, io::count_zimage_blocks(original));
  const Tensor qkv = original.get("noise_refiner.0.attention.qkv.weight");
  const Tensor k = named.get("noise_refiner.0.attention.to_k.weight");
  EXPECT_EQ(k.shape(), (Shape{64, 64}));
  EXPECT_EQ(k.raw(), static_cast<char*>(qkv.raw()) + 64 * 64 * 2);
  EXPECT_FALSE(named.contains("noise_refiner.0.attention.qkv.weight"));
}

TEST(ZImageDiT, BatchEqualsSamplesOneAtATime) {
  const ZImageTransformer model = models::load_zimage_transformer(kFolder);
  const Golden g;
  for (const std::string name : {"batch_sq8_cap33_cap5", "batch_h6w10_cap5_cap20"}) {
    const Case c = g.get(name);
    const Tensor batched = run(model, c);
    for (int64_t i = 0; i < 2; ++i) {
      const Tensor one = model.forward(c.latents.slice(0, i, i + 1).contiguous(),
                                       std::span<const float>(&c.t[i], 1), {c.captions[i]});
      EXPECT_LE(relative_error(one, batched.slice(0, i, i + 1)), 1e-5) << name << " sample " << i;
    }
  }
}

TEST(ZImageDiT, Bf16WeightsStayCloseToFp32Reference) {
  const io::WeightStore fp32 = io::WeightStore::open(kFolder);
  io::WeightStore bf16;
  for (const auto& name : fp32.names()) bf16.add(name, fp32.get(name).to(DType::BF16));
  const ZImageTransformer model(tiny_config(), bf16);
  const Golden g;
  for (const auto& name : kCases) {
    const Case c = g.get(name);
    const double cos = cosine(run(model, c), c.output);
    EXPECT_GE(cos, 0.999) << name;
    RecordProperty(name, std::to_string(cos));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ZImageDiT, MissingOrWrongTensorsAreNamed) {
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const io::WeightStore missing =
      store.renamed([](const std::string& n) -> std::optional<std::string> {
        if (n == "layers.1.feed_forward.w2.weight") return std::nullopt;
        return n;
      });
  EXPECT_NE(error_of([&] {
              ZImageTransformer(tiny_config(), missing);
            }).find("layers.1.feed_forward.w2.weight"),
            std::string::npos);

  io::WeightStore wrong = store.renamed([](const std::string& n) -> std::optional<std::string> {
    if (n == "cap_pad_token") return std::nullopt;
    return n;
  });
  wrong.add("cap_pad_token", Tensor::zeros({1, 63}, DType::F32));
  const std::string msg = error_of([&] { ZImageTransformer(tiny_config(), wrong); });
  EXPECT_NE(msg.find("cap_pad_token"), std::string::npos) << msg;

  io::WeightStore unknown = io::WeightStore::open(kOriginal);
  unknown.add("layers.0.attention.qkv.bias", Tensor::zeros({192}, DType::F32));
  EXPECT_NE(error_of([&] {
              models::load_zimage_transformer(unknown, tiny_config());
            }).find("layers.0.attention.qkv.bias"),
            std::string::npos);

  EXPECT_NE(error_of([&] { io::detect_zimage_layout(io::WeightStore{}); }).find("x_embedder"),
            std::string::npos);
}

// Without config.json the tiny head dim (32) cannot be told from the weights' axes split.
TEST(ZImageDiT, InferenceNeedsConfigForNonReleaseHeadDim) {
  const std::string msg = error_of([&] { models::load_zimage_transformer(kOriginal); });
  EXPECT_NE(msg.find("config.json"), std::string::npos) << msg;
}

TEST(ZImageDiT, BadInputsAreRejected) {
  const ZImageTransformer model = models::load_zimage_transformer(kFolder);
  const Case c = Golden{}.get("sq8_cap1_t0");
  const std::vector<float> t = {0.5f};
  EXPECT_THROW(model.forward(Tensor::zeros({1, 16, 7, 8}, DType::F32), t, c.captions), Error);
  EXPECT_THROW(model.forward(Tensor::zeros({1, 4, 8, 8}, DType::F32), t, c.captions), Error);
  EXPECT_THROW(model.forward(c.latents, t, {Tensor::zeros({3, 31}, DType::F32)}), Error);
  EXPECT_THROW(model.forward(c.latents, t, {Tensor::zeros({0, 32}, DType::F32)}), Error);
  EXPECT_THROW(model.forward(c.latents, std::vector<float>{0.1f, 0.2f}, c.captions), Error);
  // A caption longer than axes_lens[0] (256) has no RoPE row.
  EXPECT_THROW(model.forward(c.latents, t, {Tensor::zeros({300, 32}, DType::F32)}), Error);
}

// Token feature order (ph, pw, c), c fastest, from the definition in facts/zimage.md 1.3.
TEST(ZImageTokens, PatchifyOrderAndRoundTrip) {
  Generator g(3);
  const Tensor latents = g.randn({2, 3, 4, 6});
  const Tensor tokens = ops::patchify(latents, 2, 32);
  ASSERT_EQ(tokens.shape(), (Shape{2, 32, 12}));
  const auto lat = latents.to_f32_vector(), tok = tokens.to_f32_vector();
  // sample 1, token (h 1, w 2) = row 1 * 3 + 2, feature (ph 1, pw 0, c 2).
  EXPECT_EQ(tok[(1 * 32 + 5) * 12 + (1 * 2 + 0) * 3 + 2], lat[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
  EXPECT_EQ(tok[(0 * 32 + 6) * 12 + 5], 0.0f);  // rows past the 6 image tokens are 0
  EXPECT_EQ(ops::unpatchify(tokens, 3, 4, 6, 2).to_f32_vector(), lat);
  EXPECT_EQ(models::zimage_padded_length(1), 32);
  EXPECT_EQ(models::zimage_padded_length(32), 32);
  EXPECT_EQ(models::zimage_padded_length(33), 64);
}

// Pair j of axis a turns by pos_a / theta^(2j / d_a); axes take consecutive pair runs.
TEST(ZImageRope, AnglesFollowTheAxisRuns) {
  const models::ZImageRope rope({4, 6, 6}, {64, 64, 64}, 256.0);
  const auto t = rope.tables({{{5, 2, 3}}, {}}, 2);
  ASSERT_EQ(t.cos.shape(), (Shape{2, 2, 8}));
  const auto cos = t.cos.to_f32_vector(), sin = t.sin.to_f32_vector();
  const double pos[] = {5, 5, 2, 2, 2, 3, 3, 3};
  const double dims[] = {4, 4, 6, 6, 6, 6, 6, 6};
  const int j[] = {0, 1, 0, 1, 2, 0, 1, 2};
  for (int i = 0; i < 8; ++i) {
    const double angle = pos[i] / std::pow(256.0, 2.0 * j[i] / dims[i]);
    EXPECT_NEAR(cos[i], std::cos(angle), 1e-6) << i;
    EXPECT_NEAR(sin[i], std::sin(angle), 1e-6) << i;
  }
  for (size_t i = 8; i < cos.size(); ++i) EXPECT_EQ(cos[i], 0.0f);  // padding rows
  EXPECT_THROW(rope.tables({{{64, 0, 0}}}, 1), Error);
}

// DESIGN.md's figure for one release-size forward at 1024x1024 with 128 caption tokens
// (4096 image tokens), counted independently from the module definitions: 56.6 TFLOP.
TEST(ZImageDiT, ForwardFlopsMatchThePublishedCount) {
  EXPECT_NEAR(zimage_dit_forward_flops(ZImageDiTConfig{}, 4096, 128) / 1e12, 56.6, 0.3);
}

// Fusing again gives back the original file: same names, shapes, dtypes and bytes (the
// inverse map is what benchmark checkpoints for other programs are written with).
TEST(ZImageDiT, DiffusersToOriginalInvertsTheSplit) {
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  const io::ZImageBlockCounts counts = io::count_zimage_blocks(original);
  const io::WeightStore back =
      io::diffusers_zimage_to_original(io::original_zimage_to_diffusers(original, counts), counts);
  ASSERT_EQ(back.names(), original.names());
  for (const std::string& name : original.names()) {
    const Tensor a = original.get(name), b = back.get(name);
    ASSERT_EQ(a.shape(), b.shape()) << name;
    ASSERT_EQ(a.dtype(), b.dtype()) << name;
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0) << name;
  }
  io::WeightStore extra = io::original_zimage_to_diffusers(original, counts);
  extra.add("unexpected.weight", Tensor::zeros({4}, DType::F32));
  const std::string msg = error_of([&] { io::diffusers_zimage_to_original(extra, counts); });
  EXPECT_NE(msg.find("1 tensors are not part of"), std::string::npos) << msg;
}

}  // namespace
}  // namespace zflow
