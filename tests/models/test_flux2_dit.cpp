// Flux2Transformer against diffusers 0.42.1 Flux2Transformer2DModel on the tiny random configs
// of tools/golden/make_flux2_dit.py (inner dim 32 = 2 heads x 16, axes_dims_rope [4, 4, 4, 4],
// theta 2000, 2 double + 2 single blocks, mlp_ratio 3, in 128, text 24; every weight random, QK
// norms included). Cases: image grids 4x4, 3x5 and 2x3, text lengths 4-7, t in {0.3, 0.5, 0.6,
// 0.75, 1}, guidance 1.5-4, a batch of two samples with different t and guidance, and a 3x2
// reference image (positions (10, i, j, 0)) after the image tokens.
// Tolerances:
//  - fp32 weights vs diffusers fp32: max |got - want| / max |want| <= 1e-4, the project's
//    fp32-CPU-versus-torch bound (DESIGN.md): float32 summation order through 4 blocks.
//  - the bf16 BFL / ComfyUI files vs diffusers run with the same bf16-rounded weights in fp32:
//    the same 1e-4 (identical values, only their storage and names differ).
//  - fp32 weights rounded to bf16 vs the fp32 reference: cosine >= 0.999, the bound the real
//    bf16 checkpoints are held to.
#include "models/flux2_dit.h"

#include <unistd.h>

#include <set>

#include "core/error.h"
#include "io/gguf_convert.h"
#include "io/key_map_flux.h"
#include "io/safetensors.h"
#include "models/flux_dit.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::Flux2DiTConfig;
using models::Flux2Position;
using models::Flux2Transformer;
using test::cosine;
using test::error_of;
using test::relative_error;

const std::filesystem::path kFolder = test::fixture("flux2_dit/tiny_dev_diffusers/transformer");
const std::filesystem::path kBfl =
    test::fixture("flux2_dit/flux2_dit_tiny_dev_bfl_bf16.safetensors");
const std::filesystem::path kComfy =
    test::fixture("flux2_dit/flux2_dit_tiny_klein_comfy_bf16.safetensors");
const std::filesystem::path kIo =
    test::fixture("flux2_dit/flux2_dit_tiny_diffusers_io.safetensors");

constexpr double kTolerance = 1e-4;
const std::vector<std::string> kCases = {"h4w4_txt7", "h3w5_txt5_t1", "batch_h2w3_txt6",
                                         "ref_h2w3_r3x2_txt4"};

struct Case {
  Tensor x, txt;
  std::vector<float> t, guidance;
  std::vector<Flux2Position> img_ids;
  Tensor dev, dev_bf16w, klein_bf16w;
};

Case golden(const std::string& name) {
  static const io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  Case c;
  c.x = file.tensor(name + ".hidden_states");
  c.txt = file.tensor(name + ".encoder_hidden_states");
  c.t = file.tensor(name + ".timestep").to_f32_vector();
  c.guidance = file.tensor(name + ".guidance").to_f32_vector();
  const auto ids = file.tensor(name + ".img_ids").to_f32_vector();
  for (size_t i = 0; i < ids.size(); i += 4)
    c.img_ids.push_back({ids[i], ids[i + 1], ids[i + 2], ids[i + 3]});
  // The model places text token k at (0, 0, 0, k) itself; the fixture must agree.
  const auto txt_ids = file.tensor(name + ".txt_ids").to_f32_vector();
  for (size_t k = 0; k < txt_ids.size() / 4; ++k) {
    EXPECT_EQ(txt_ids[4 * k + 3], static_cast<float>(k)) << name;
    EXPECT_EQ(txt_ids[4 * k] + txt_ids[4 * k + 1] + txt_ids[4 * k + 2], 0.0f) << name;
  }
  c.dev = file.tensor(name + ".dev_output");
  c.dev_bf16w = file.tensor(name + ".dev_output_bf16w");
  c.klein_bf16w = file.tensor(name + ".klein_output_bf16w");
  return c;
}

Flux2DiTConfig tiny_config(bool dev = true) {
  Flux2DiTConfig c = Flux2DiTConfig::from_json_file(kFolder / "config.json");
  c.guidance_embeds = dev;
  return c;
}

Tensor run(const Flux2Transformer& model, const Case& c) {
  const bool dev = model.config().guidance_embeds;
  return model.forward(c.x, c.img_ids, c.txt, c.t,
                       dev ? std::span<const float>(c.guidance) : std::span<const float>{});
}

TEST(Flux2DiT, FixtureIsCurrent) {
  const io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  EXPECT_EQ(file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(file.metadata().at("generator"), "tools/golden/make_flux2_dit.py");
}

TEST(Flux2DiT, ConfigFromJson) {
  const Flux2DiTConfig c = tiny_config();
  EXPECT_EQ(c.inner_dim(), 32);
  EXPECT_EQ(c.mlp_hidden_dim(), 96);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_single_layers, 2);
  EXPECT_EQ(c.joint_attention_dim, 24);
  EXPECT_EQ(c.out_channels, 128);  // null in config.json: in_channels
  EXPECT_EQ(c.axes_dims_rope, (std::vector<int64_t>{4, 4, 4, 4}));
  EXPECT_EQ(c.rope_theta, 2000.0);
  EXPECT_TRUE(Flux2DiTConfig::from_json("{}", "empty.json").guidance_embeds);  // diffusers default
  EXPECT_THROW(Flux2DiTConfig::from_json(R"({"axes_dims_rope": [32, 32, 32, 16]})", "bad.json"),
               Error);
  EXPECT_THROW(Flux2DiTConfig::from_json(R"({"patch_size": 2})", "bad.json"), Error);
  EXPECT_NE(error_of([] {
              Flux2DiTConfig::from_json(R"({"_class_name": "FluxTransformer2DModel"})", "x.json");
            }).find("Flux2Transformer2DModel"),
            std::string::npos);
}

// The releases, counted with diffusers on the meta device (Flux2Transformer2DModel(**config)
// state dict): dev 331 tensors, 32,223,281,152 parameters; klein 4B 169 and 3,875,544,576;
// klein 9B 233 and 9,078,581,248.
TEST(Flux2DiT, ReleaseParameterLists) {
  const std::vector<std::tuple<Flux2DiTConfig, size_t, int64_t>> releases = {
      {Flux2DiTConfig{}, 331, 32'223'281'152},
      {Flux2DiTConfig::klein_4b(), 169, 3'875'544'576},
      {Flux2DiTConfig::klein_9b(), 233, 9'078'581'248}};
  for (const auto& [config, tensors, parameters] : releases) {
    const auto params = models::flux2_dit_parameters(config);
    int64_t total = 0;
    for (const auto& p : params) total += shape_numel(p.shape);
    EXPECT_EQ(params.size(), tensors) << config.summary();
    EXPECT_EQ(total, parameters) << config.summary();
  }
}

// The parameter list is exactly the tensors diffusers saved for the tiny config.
TEST(Flux2DiT, ParameterListMatchesDiffusersCheckpoint) {
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const auto params = models::flux2_dit_parameters(tiny_config());
  std::set<std::string> names;
  for (const auto& p : params) {
    names.insert(p.name);
    ASSERT_TRUE(store.contains(p.name)) << p.name;
    EXPECT_EQ(store.get(p.name).shape(), p.shape) << p.name;
  }
  EXPECT_EQ(names.size(), store.size());
}

TEST(Flux2DiT, DiffusersFolderMatchesDiffusers) {
  const Flux2Transformer model = models::load_flux2_transformer(kFolder);
  EXPECT_TRUE(model.config().guidance_embeds);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.dev);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

TEST(Flux2DiT, ModelFolderLoads) {
  const Case c = golden("h3w5_txt5_t1");
  const Flux2Transformer model = models::load_flux2_transformer(kFolder.parent_path());
  EXPECT_LE(relative_error(run(model, c), c.dev), kTolerance);
}

TEST(Flux2DiT, OriginalBflFileMatchesDiffusers) {
  const io::WeightStore store = io::WeightStore::open(kBfl);
  EXPECT_EQ(io::detect_flux_layout(store), io::FluxLayout::Original);
  EXPECT_EQ(io::detect_flux_generation(store), io::FluxGeneration::Flux2);
  EXPECT_TRUE(io::flux_has_guidance(store));
  EXPECT_EQ(store.get("double_blocks.0.img_attn.qkv.weight").dtype(), DType::BF16);
  const Flux2Transformer model = models::load_flux2_transformer(kBfl, tiny_config(true));
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.dev_bf16w);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// klein in a ComfyUI diffusion-model file: BFL names under `model.diffusion_model.`, next to
// other components' tensors in a full checkpoint.
TEST(Flux2DiT, ComfyKleinFileMatchesDiffusers) {
  io::WeightStore checkpoint = io::WeightStore::open(kComfy);
  checkpoint.add("text_encoders.qwen3_4b.transformer.model.norm.weight",
                 Tensor::zeros({4}, DType::F32));
  checkpoint.add("vae.decoder.conv_in.weight", Tensor::zeros({4, 32, 3, 3}, DType::F32));
  EXPECT_FALSE(io::flux_has_guidance(io::flux_transformer_weights(checkpoint)));
  const Flux2Transformer model = models::load_flux2_transformer(checkpoint, tiny_config(false));
  EXPECT_FALSE(model.config().guidance_embeds);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double err = relative_error(run(model, c), c.klein_bf16w);
    EXPECT_LE(err, kTolerance) << name;
    RecordProperty(name, std::to_string(err));
  }
}

// The BFL final modulation stores (shift, scale); diffusers' norm_out.linear (scale, shift). The
// double blocks' fused qkv becomes row views of the mapped file; linear1 stays whole.
TEST(Flux2DiT, OriginalNamesBecomeDiffusersNames) {
  const io::WeightStore bfl = io::WeightStore::open(kBfl);
  const io::WeightStore named = io::original_flux_to_diffusers(bfl);
  const auto original = bfl.get("final_layer.adaLN_modulation.1.weight").to_f32_vector();
  const auto swapped = named.get("norm_out.linear.weight").to_f32_vector();
  ASSERT_EQ(original.size(), 64u * 32u);
  const size_t half = original.size() / 2;
  for (size_t i = 0; i < half; ++i) {
    EXPECT_EQ(swapped[i], original[half + i]);
    EXPECT_EQ(swapped[half + i], original[i]);
  }
  const Tensor qkv = bfl.get("double_blocks.1.txt_attn.qkv.weight");
  const Tensor v = named.get("transformer_blocks.1.attn.add_v_proj.weight");
  EXPECT_EQ(v.shape(), (Shape{32, 32}));
  EXPECT_EQ(v.raw(), static_cast<char*>(qkv.raw()) + 2 * 32 * 32 * 2);
  EXPECT_EQ(named.get("single_transformer_blocks.0.attn.to_qkv_mlp_proj.weight").shape(),
            (Shape{3 * 32 + 2 * 96, 32}));
  EXPECT_TRUE(named.contains("double_stream_modulation_txt.linear.weight"));
  EXPECT_TRUE(named.contains("time_guidance_embed.guidance_embedder.linear_2.weight"));
  EXPECT_EQ(named.size(), io::WeightStore::open(kFolder).size());
}

// Without config.json a release-shaped model (head dim 128) is read from its weights alone.
TEST(Flux2DiT, ConfigIsInferredFromReleaseShapedWeights) {
  Flux2DiTConfig want;
  want.num_layers = 1;
  want.num_single_layers = 2;
  want.num_attention_heads = 1;
  want.joint_attention_dim = 24;
  want.in_channels = 64;
  want.out_channels = 32;
  want.guidance_embeds = false;
  const io::WeightStore weights = models::flux2_dit_random_weights(want, DType::BF16, 3);
  const Flux2DiTConfig got = Flux2DiTConfig::infer_from_weights(weights);
  EXPECT_EQ(got.summary(), want.summary());
  EXPECT_EQ(got.timestep_guidance_channels, 256);
  // The tiny fixture's head dim 16 cannot be told from the weights' axes split.
  EXPECT_NE(error_of([] { models::load_flux2_transformer(kBfl); }).find("config.json"),
            std::string::npos);
}

TEST(Flux2DiT, Bf16WeightsStayCloseToFp32Reference) {
  const io::WeightStore fp32 = io::WeightStore::open(kFolder);
  io::WeightStore bf16;
  for (const auto& name : fp32.names()) bf16.add(name, fp32.get(name).to(DType::BF16));
  const Flux2Transformer model(tiny_config(), bf16);
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double cos = cosine(run(model, c), c.dev);
    EXPECT_GE(cos, 0.999) << name;
    RecordProperty(name, std::to_string(cos));
  }
}

TEST(Flux2DiT, WrongGenerationGuidanceAndMissingTensorsAreNamed) {
  // Each generation's loader refuses the other's files.
  const auto flux1 = test::fixture("flux_dit/flux_dit_tiny_dev_bfl_bf16.safetensors");
  EXPECT_NE(error_of([&] { models::load_flux2_transformer(flux1); }).find("FLUX.1"),
            std::string::npos);
  EXPECT_NE(error_of([] { models::load_flux_transformer(kBfl); }).find("FLUX.2"),
            std::string::npos);
  // A dev config on klein weights, and the other way round.
  EXPECT_NE(error_of([] {
              models::load_flux2_transformer(kComfy, tiny_config(true));
            }).find("guidance_embeds"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              models::load_flux2_transformer(kBfl, tiny_config(false));
            }).find("guidance_embeds"),
            std::string::npos);
  const io::WeightStore store = io::WeightStore::open(kFolder);
  const io::WeightStore missing =
      store.renamed([](const std::string& n) -> std::optional<std::string> {
        if (n == "single_transformer_blocks.1.attn.to_out.weight") return std::nullopt;
        return n;
      });
  EXPECT_NE(error_of([&] {
              Flux2Transformer(tiny_config(), missing);
            }).find("single_transformer_blocks.1.attn.to_out.weight"),
            std::string::npos);
  io::WeightStore unknown = io::WeightStore::open(kBfl);
  unknown.add("double_blocks.0.img_mod.lin.weight", Tensor::zeros({4}, DType::F32));
  EXPECT_NE(error_of([&] {
              models::load_flux2_transformer(unknown, tiny_config());
            }).find("double_blocks.0.img_mod.lin.weight"),
            std::string::npos);
}

// A klein file converted to Q8_0 GGUF (BFL names, as city96's FLUX GGUFs hold them) loads and
// runs; Q8_0's rounding of the bf16 matrices (at most half a step of max|w| / 127 a block) keeps
// the output's cosine to the bf16 weights' output at 0.9999 or better through 4 blocks (measured
// 0.999997: 1 - cos 30x under the bound).
TEST(Flux2DiT, Q8GgufOfAKleinFileRuns) {
  const std::filesystem::path out = std::filesystem::temp_directory_path() /
                                    ("zflow_flux2_q8_" + std::to_string(getpid()) + ".gguf");
  const io::WeightStore comfy =
      io::WeightStore::open(kComfy).with_prefix_removed("model.diffusion_model.");
  io::convert_to_gguf(comfy, out, {.target = DType::Q8_0, .architecture = "flux"});
  const io::WeightStore gguf = io::WeightStore::open(out);
  EXPECT_EQ(gguf.get("double_blocks.0.img_attn.qkv.weight").dtype(), DType::Q8_0);
  const Flux2Transformer model = models::load_flux2_transformer(gguf, tiny_config(false));
  for (const auto& name : kCases) {
    const Case c = golden(name);
    const double cos = cosine(run(model, c), c.klein_bf16w);
    EXPECT_GE(cos, 0.9999) << name;
    RecordProperty(name, std::to_string(cos));
  }
  std::filesystem::remove(out);
}

TEST(Flux2DiT, BadInputsAreRejected) {
  const Flux2Transformer model = models::load_flux2_transformer(kFolder);
  const Case c = golden("h4w4_txt7");
  const std::vector<float> none;
  EXPECT_THROW(model.forward(c.x, c.img_ids, c.txt, c.t, none), Error);  // dev needs guidance
  EXPECT_THROW(model.forward(c.x.slice(2, 0, 64), c.img_ids, c.txt, c.t, c.guidance), Error);
  EXPECT_THROW(model.forward(c.x, std::span(c.img_ids).first(3), c.txt, c.t, c.guidance), Error);
  EXPECT_THROW(model.forward(c.x, c.img_ids, c.txt.slice(2, 0, 8), c.t, c.guidance), Error);
}

TEST(Flux2Tokens, ImageIdsAreRowMajorWithTheImageIndexOnAxisZero) {
  const auto ids = models::flux2_image_ids(2, 3, 10.0f);
  ASSERT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids[0], (Flux2Position{10, 0, 0, 0}));
  EXPECT_EQ(ids[5], (Flux2Position{10, 1, 2, 0}));
}

// Counted by hand for klein 4B at 1024x1024 (4096 image tokens) and 512 text tokens:
// linears per token 5 x (4 D^2 + 3 D M) + 20 x (D (3 D + 2 M) + (D + M) D) with D 3072, M 9216,
// times 2 x 4608 tokens = 28.27 TFLOP; attention 25 x 4 x 4608^2 x 3072 = 6.52 TFLOP; embedders
// and output 0.03 TFLOP: 34.82 TFLOP.
TEST(Flux2DiT, ForwardFlopsMatchTheHandCount) {
  EXPECT_NEAR(models::flux2_dit_forward_flops(Flux2DiTConfig::klein_4b(), 4096, 512) / 1e12, 34.82,
              0.01);
}

}  // namespace
}  // namespace zflow
