// FluxTransformer against diffusers 0.42.1 FluxTransformer2DModel on the tiny random configs of
// tools/golden/make_flux_dit.py (inner dim 32 = 2 heads x 16, axes_dims_rope [4, 6, 6], 2 double
// + 2 single blocks, in 64, text 24, pooled 12; every weight random, biases and QK norms
// included). Cases: packed grids 4x4, 3x5 and 5x2, text lengths 5-9, t in {0.125, 0.3, 0.5, 0.75,
// 1}, guidance 1-7, and a batch of two samples with different t and guidance.
// Tolerances:
//  - fp32 weights vs diffusers fp32: max |got - want| / max |want| <= 1e-4, the project's
//    fp32-CPU-versus-torch bound (DESIGN.md): float32 summation order through 4 blocks.
//  - the bf16 BFL / ComfyUI files vs diffusers run with the same bf16-rounded weights in fp32:
//    the same 1e-4 (identical values, only their storage and names differ).
//  - fp32 weights rounded to bf16 vs the fp32 reference: cosine >= 0.999, the bound the real
//    bf16 checkpoints are held to.
#include "models/flux_dit.h"

#include <fmt/format.h>

#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "io/key_map_flux.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::FluxDiTConfig;
using models::FluxPosition;
using models::FluxTransformer;
using test::cosine;
using test::error_of;
using test::relative_error;

const std::filesystem::path kFolder = test::fixture("flux_dit/tiny_dev_diffusers/transformer");
const std::filesystem::path kBfl = test::fixture("flux_dit/flux_dit_tiny_dev_bfl_bf16.safetensors");
const std::filesystem::path kComfy =
    test::fixture("flux_dit/flux_dit_tiny_schnell_comfy_bf16.safetensors");
const std::filesystem::path kIo = test::fixture("flux_dit/flux_dit_tiny_diffusers_io.safetensors");

constexpr double kTolerance = 1e-4;
const std::vector<std::string> kCases = {"h4w4_txt7", "h3w5_txt5_t1", "h5w2_txt9",
                                         "batch_h2w3_txt6"};

struct Case {
  Tensor x, txt, pooled;
  std::vector<float> t, guidance;
  std::vector<FluxPosition> img_ids;
  Tensor dev, dev_bf16w, schnell_bf16w;
};

Case golden(const std::string& name) {
  static const io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  Case c;
  c.x = file.tensor(name + ".hidden_states");
  c.txt = file.tensor(name + ".encoder_hidden_states");
  c.pooled = file.tensor(name + ".pooled_projections");
  c.t = file.tensor(name + ".timestep").to_f32_vector();
  c.guidance = file.tensor(name + ".guidance").to_f32_vector();
  const auto ids = file.tensor(name + ".img_ids").to_f32_vector();
  for (size_t i = 0; i < ids.size(); i += 3) c.img_ids.push_back({ids[i], ids[i + 1], ids[i + 2]});
  c.dev = file.tensor(name + ".dev_output");
  c.dev_bf16w = file.tensor(name + ".dev_output_bf16w");
  c.schnell_bf16w = file.tensor(name + ".schnell_output_bf16w");
  return c;
}

FluxDiTConfig tiny_config(bool dev = true) {
  FluxDiTConfig c = FluxDiTConfig::from_json_file(kFolder / "config.json");
  c.guidance_embeds = dev;
  return c;
}

Tensor run(const FluxTransformer& model, const Case& c) {
  const bool dev = model.config().guidance_embeds;
  return model.forward(c.x, c.img_ids, c.txt, c.pooled, c.t,
                       dev ? std::span<const float>(c.guidance) : std::span<const float>{});
}

TEST(FluxDiT, FixtureIsCurrent) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  EXPECT_EQ(file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(file.metadata().at("generator"), "tools/golden/make_flux_dit.py");
}

TEST(FluxDiT, ConfigFromJson) {
  const FluxDiTConfig c = tiny_config();
  EXPECT_EQ(c.inner_dim(), 32);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_single_layers, 2);
  EXPECT_EQ(c.joint_attention_dim, 24);
  EXPECT_EQ(c.pooled_projection_dim, 12);
  EXPECT_EQ(c.out_channels, 64);  // null in config.json: in_channels
  EXPECT_TRUE(FluxDiTConfig::from_json_file(kFolder / "config.json").guidance_embeds);
  EXPECT_EQ(c.axes_dims_rope, (std::vector<int64_t>{4, 6, 6}));
  EXPECT_FALSE(FluxDiTConfig::from_json("{}", "empty.json").guidance_embeds);  // diffusers default
  EXPECT_THROW(FluxDiTConfig::from_json(R"({"axes_dims_rope": [16, 56, 48]})", "bad.json"), Error);
  EXPECT_THROW(FluxDiTConfig::from_json(R"({"patch_size": 2})", "bad.json"), Error);
}

// The release: counted with diffusers on the meta device (FluxTransformer2DModel() state dict):
// dev 1160 tensors, 11,901,408,320 parameters; schnell 1156 and 11,891,178,560 (the figures of
// facts/flux.md section 0 for the original layout's 780 / 776 fused tensors).
TEST(FluxDiT, ReleaseParameterList) {
  for (const bool dev : {true, false}) {
    const auto params =
        models::flux_dit_parameters(dev ? FluxDiTConfig{} : FluxDiTConfig::schnell());
    int64_t total = 0;
    for (const auto& p : params) total += shape_numel(p.shape);
    EXPECT_EQ(params.size(), dev ? 1160u : 1156u);
    EXPECT_EQ(total, dev ? 11'901'408'320 : 11'891'178'560);
  }
}

// The parameter list is exactly the tensors diffusers saved for the tiny config.
TEST(FluxDiT, ParameterListMatchesDiffusersCheckpoint) {
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const auto params = models::flux_dit_parameters(tiny_config());
  std::set<std::string> names;
  for (const auto& p : params) {
    names.insert(p.name);
    ASSERT_TRUE(store.contains(p.name)) << p.name;
    EXPECT_EQ(store.get(p.name).shape(), p.shape) << p.name;
  }
  EXPECT_EQ(names.size(), store.size());
}

TEST(FluxDiT, DiffusersFolderMatchesDiffusers) {
  const FluxTransformer model = models::load_flux_transformer(kFolder);
  EXPECT_TRUE(model.config().guidance_embeds);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.dev);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

TEST(FluxDiT, IndexFileAndModelFolderLoad) {
  const Case c = golden("h3w5_txt5_t1");
  for (const auto& path :
       {kFolder / "diffusion_pytorch_model.safetensors.index.json", kFolder.parent_path()}) {
    const FluxTransformer model = models::load_flux_transformer(path);
    EXPECT_EQ(model.config().axes_dims_rope, (std::vector<int64_t>{4, 6, 6})) << path;
    EXPECT_LE(relative_error(run(model, c), c.dev), kTolerance) << path;
  }
}

TEST(FluxDiT, OriginalBflFileMatchesDiffusers) {
  const io::WeightStore store = io::WeightStore::open(kBfl);
  EXPECT_EQ(io::detect_flux_layout(store), io::FluxLayout::Original);
  EXPECT_TRUE(io::flux_has_guidance(store));
  EXPECT_EQ(store.get("double_blocks.0.img_attn.qkv.weight").dtype(), DType::BF16);
  const FluxTransformer model = models::load_flux_transformer(kBfl, tiny_config(true));
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.dev_bf16w);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// schnell in a ComfyUI diffusion-model file: BFL names under `model.diffusion_model.`, next to
// other components' tensors in a full checkpoint.
TEST(FluxDiT, ComfySchnellFileMatchesDiffusers) {
  io::WeightStore checkpoint = io::WeightStore::open(kComfy);
  checkpoint.add("text_encoders.clip_l.transformer.text_model.final_layer_norm.weight",
                 Tensor::zeros({4}, DType::F32));
  checkpoint.add("vae.decoder.conv_in.weight", Tensor::zeros({4, 16, 3, 3}, DType::F32));
  EXPECT_FALSE(io::flux_has_guidance(io::flux_transformer_weights(checkpoint)));
  const FluxTransformer model = models::load_flux_transformer(checkpoint, tiny_config(false));
  EXPECT_FALSE(model.config().guidance_embeds);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.schnell_bf16w);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// The BFL final modulation stores (shift, scale); diffusers' norm_out.linear (scale, shift).
TEST(FluxDiT, FinalModulationHalvesAreSwapped) {
  const io::WeightStore bfl = io::WeightStore::open(kBfl);
  const io::WeightStore named = io::original_flux_to_diffusers(bfl);
  const auto original = bfl.get("final_layer.adaLN_modulation.1.bias").to_f32_vector();
  const auto swapped = named.get("norm_out.linear.bias").to_f32_vector();
  ASSERT_EQ(original.size(), 64u);
  for (size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(swapped[i], original[32 + i]);
    EXPECT_EQ(swapped[32 + i], original[i]);
  }
  // The fused single-block linear1 becomes row views [D | D | D | mlp] of the mapped file.
  const Tensor linear1 = bfl.get("single_blocks.1.linear1.weight");
  const Tensor mlp = named.get("single_transformer_blocks.1.proj_mlp.weight");
  EXPECT_EQ(mlp.shape(), (Shape{128, 32}));
  EXPECT_EQ(mlp.raw(), static_cast<char*>(linear1.raw()) + 3 * 32 * 32 * 2);
}

TEST(FluxDiT, Bf16WeightsStayCloseToFp32Reference) {
  const io::WeightStore fp32 = io::WeightStore::open(kFolder);
  io::WeightStore bf16;
  for (const auto& name : fp32.names()) bf16.add(name, fp32.get(name).to(DType::BF16));
  const FluxTransformer model(tiny_config(), bf16);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double cos = cosine(run(model, c), c.dev);
    EXPECT_GE(cos, 0.999) << name;
    RecordProperty(name, std::to_string(cos));
  }
}

TEST(FluxDiT, GuidanceMismatchAndMissingTensorsAreNamed) {
  // A dev config on schnell weights, and the other way round.
  EXPECT_NE(error_of([] {
              models::load_flux_transformer(kComfy, tiny_config(true));
            }).find("guidance_embeds"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              models::load_flux_transformer(kBfl, tiny_config(false));
            }).find("guidance_embeds"),
            std::string::npos);
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const io::WeightStore missing =
      store.renamed([](const std::string& n) -> std::optional<std::string> {
        if (n == "single_transformer_blocks.1.proj_out.weight") return std::nullopt;
        return n;
      });
  EXPECT_NE(error_of([&] {
              FluxTransformer(tiny_config(), missing);
            }).find("single_transformer_blocks.1.proj_out.weight"),
            std::string::npos);
  io::WeightStore unknown = io::WeightStore::open(kBfl);
  unknown.add("double_blocks.0.img_attn.lora_up.weight", Tensor::zeros({4}, DType::F32));
  EXPECT_NE(error_of([&] {
              models::load_flux_transformer(unknown, tiny_config());
            }).find("double_blocks.0.img_attn.lora_up.weight"),
            std::string::npos);
  EXPECT_NE(error_of([] { io::detect_flux_layout(io::WeightStore{}); }).find("txt_in.weight"),
            std::string::npos);
  // Without config.json the tiny head dim (16) cannot be told from the weights' axes split.
  EXPECT_NE(error_of([] { models::load_flux_transformer(kBfl); }).find("config.json"),
            std::string::npos);
}

TEST(FluxDiT, BadInputsAreRejected) {
  const FluxTransformer model = models::load_flux_transformer(kFolder);
  const Case c = golden("h4w4_txt7");
  const std::vector<float> none;
  EXPECT_THROW(model.forward(c.x, c.img_ids, c.txt, c.pooled, c.t, none), Error);  // dev needs g
  EXPECT_THROW(model.forward(c.x.slice(2, 0, 32), c.img_ids, c.txt, c.pooled, c.t, c.guidance),
               Error);
  EXPECT_THROW(model.forward(c.x, std::span(c.img_ids).first(3), c.txt, c.pooled, c.t, c.guidance),
               Error);
  EXPECT_THROW(model.forward(c.x, c.img_ids, c.txt.slice(2, 0, 8), c.pooled, c.t, c.guidance),
               Error);
}

// diffusers _pack_latents: token (row, col) holds latent (2 row + ph, 2 col + pw) of channel c at
// feature c * 4 + ph * 2 + pw (facts/flux.md 1.2 step 1); _unpack_latents inverts it.
TEST(FluxTokens, PackOrderAndRoundTrip) {
  Generator g(5);
  const Tensor latents = g.randn({2, 3, 4, 6});
  const Tensor tokens = models::flux_pack_latents(latents);
  ASSERT_EQ(tokens.shape(), (Shape{2, 6, 12}));
  const auto lat = latents.to_f32_vector(), tok = tokens.to_f32_vector();
  // sample 1, token (row 1, col 2) = 1 * 3 + 2, channel 2, ph 1, pw 0 -> latent (3, 4).
  EXPECT_EQ(tok[(1 * 6 + 5) * 12 + 2 * 4 + 1 * 2 + 0], lat[((1 * 3 + 2) * 4 + 3) * 6 + 4]);
  EXPECT_EQ(models::flux_unpack_latents(tokens, 4, 6).to_f32_vector(), lat);
  const auto ids = models::flux_image_ids(2, 3);
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[5], (FluxPosition{0, 1, 2}));
  EXPECT_THROW(models::flux_pack_latents(g.randn({1, 3, 5, 6})), Error);
}

// Counted by hand for the release at 1024x1024 (4096 image tokens) and 512 text tokens:
// linears per token 19 x (4 D^2 + 2 D M) + 38 x (3 D^2 + D M + (D + M) D) with D 3072, M 12288,
// times 2 x 4608 tokens = 59.5 TFLOP; attention 57 x 4 x 4608^2 x 3072 = 14.9 TFLOP; embedders
// and output 0.015 TFLOP. (facts/flux.md's 94 TFLOP also counts the modulation weights and both
// streams of a double block for every token.)
TEST(FluxDiT, ForwardFlopsMatchTheHandCount) {
  EXPECT_NEAR(models::flux_dit_forward_flops(FluxDiTConfig{}, 4096, 512) / 1e12, 74.4, 0.2);
}

}  // namespace
}  // namespace zflow
