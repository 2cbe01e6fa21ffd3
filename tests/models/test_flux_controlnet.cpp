// FluxControlNet and the transformer's ControlNet samples against diffusers 0.42.1
// FluxControlNetModel and FluxTransformer2DModel on the tiny random models of
// tools/golden/make_flux_controlnet.py: a main transformer of 4 double + 3 single blocks (inner 32)
// and three ControlNets of its width: union (3 double + 2 single blocks, 5 modes, guidance
// embedder), plain (1 double block, no modes, no guidance embedder), xlabs (2 double blocks, the
// hint block on pixels, patch 2, samples repeated). Every weight random (the zero-initialised
// ones included) and bf16-rounded. Cases: non-square grids, a batch of two with different t,
// guidance, scale 0.6-1.
// Tolerance: max |got - want| / max |want| <= 1e-4 for each sample and the transformer's output,
// the project's fp32-CPU-versus-torch bound (float32 summation order). The likeliest mistakes
// (interval instead of repetition for XLabs, no mode token) are shown to miss it by far.
#include "models/flux_controlnet.h"

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using models::FluxControlNet;
using models::FluxControlNetConfig;
using models::FluxDiTConfig;
using models::FluxPosition;
using models::FluxTransformer;
using test::error_of;
using test::relative_error;

const std::filesystem::path kDir = test::fixture("flux_controlnet");
constexpr double kTolerance = 1e-4;

const io::SafetensorsFile& io_file() {
  static const io::SafetensorsFile file =
      io::SafetensorsFile::open(kDir / "flux_controlnet_tiny_diffusers_io.safetensors");
  return file;
}

struct Case {
  std::string net;
  Tensor x, txt, pooled, control;
  std::vector<float> t, guidance;
  std::vector<FluxPosition> img_ids;
  std::optional<int> mode;
  float scale;
  std::vector<Tensor> double_samples, single_samples;
  Tensor output;
};

Case golden(const std::string& name) {
  const io::SafetensorsFile& file = io_file();
  const nlohmann::json cases = nlohmann::json::parse(file.metadata().at("cases"));
  const nlohmann::json& spec = cases.at(name);  // [net, rows, cols, text, samples, mode, scale]
  Case c;
  c.net = spec[0].get<std::string>();
  if (!spec[5].is_null()) c.mode = spec[5].get<int>();
  c.scale = spec[6].get<float>();
  c.x = file.tensor(name + ".hidden_states");
  c.txt = file.tensor(name + ".encoder_hidden_states");
  c.pooled = file.tensor(name + ".pooled_projections");
  c.control = file.tensor(name + ".cond");
  c.t = file.tensor(name + ".timestep").to_f32_vector();
  c.guidance = file.tensor(name + ".guidance").to_f32_vector();
  const auto ids = file.tensor(name + ".img_ids").to_f32_vector();
  for (size_t i = 0; i < ids.size(); i += 3) c.img_ids.push_back({ids[i], ids[i + 1], ids[i + 2]});
  for (int i = 0; file.find(fmt::format("{}.double_sample.{}", name, i)); ++i)
    c.double_samples.push_back(file.tensor(fmt::format("{}.double_sample.{}", name, i)));
  for (int i = 0; file.find(fmt::format("{}.single_sample.{}", name, i)); ++i)
    c.single_samples.push_back(file.tensor(fmt::format("{}.single_sample.{}", name, i)));
  c.output = file.tensor(name + ".output");
  return c;
}

const FluxTransformer& main_transformer() {
  static const FluxTransformer model = models::load_flux_transformer(
      kDir / "main_transformer.safetensors",
      FluxDiTConfig::from_json(io_file().metadata().at("main"), "main config"));
  return model;
}

FluxTransformer::ControlSamples run(const FluxControlNet& net, const Case& c) {
  const bool guided = net.config().trunk.guidance_embeds;
  return net.forward(c.x, c.img_ids, c.txt, c.pooled, c.t,
                     guided ? std::span<const float>(c.guidance) : std::span<const float>{},
                     c.control, c.mode, c.scale);
}

Tensor run_main(const Case& c, const FluxTransformer::ControlSamples& samples) {
  return main_transformer().forward(c.x, c.img_ids, c.txt, c.pooled, c.t, c.guidance, &samples);
}

void expect_matches(const FluxControlNet& net, const std::string& name) {
  SCOPED_TRACE(name);
  const Case c = golden(name);
  const FluxTransformer::ControlSamples got = run(net, c);
  ASSERT_EQ(got.double_blocks.size(), c.double_samples.size());
  ASSERT_EQ(got.single_blocks.size(), c.single_samples.size());
  for (size_t i = 0; i < got.double_blocks.size(); ++i)
    EXPECT_LE(relative_error(got.double_blocks[i], c.double_samples[i]), kTolerance) << i;
  for (size_t i = 0; i < got.single_blocks.size(); ++i)
    EXPECT_LE(relative_error(got.single_blocks[i], c.single_samples[i]), kTolerance) << i;
  EXPECT_LE(relative_error(run_main(c, got), c.output), kTolerance);
}

const std::vector<std::pair<std::string, std::string>> kCases = {{"union", "union_h4w3_txt5"},
                                                                 {"union", "union_batch_h2w5_txt4"},
                                                                 {"plain", "plain_h3w3_txt6"},
                                                                 {"xlabs", "xlabs_h3w4_txt5"}};

TEST(FluxControlNet, FixtureIsCurrent) {
  EXPECT_EQ(io_file().metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(io_file().metadata().at("generator"), "tools/golden/make_flux_controlnet.py");
}

TEST(FluxControlNet, ConfigFromJson) {
  auto config = [](const std::string& net) {
    return FluxControlNetConfig::from_json(read_text_file(kDir / net / "config.json", "test"), net);
  };
  const FluxControlNetConfig u = config("union"), p = config("plain"), x = config("xlabs");
  EXPECT_EQ(u.trunk.num_layers, 3);
  EXPECT_EQ(u.trunk.num_single_layers, 2);
  EXPECT_EQ(u.num_mode, 5);
  EXPECT_TRUE(u.trunk.guidance_embeds);
  EXPECT_FALSE(u.takes_pixels());
  EXPECT_FALSE(u.trunk.final_layer);
  EXPECT_EQ(p.num_mode, 0);
  EXPECT_FALSE(p.trunk.guidance_embeds);
  EXPECT_EQ(x.conditioning_embedding_channels, 16);
  EXPECT_EQ(x.patch_size, 2);
  EXPECT_TRUE(x.takes_pixels());
  EXPECT_NE(error_of([] {
              FluxControlNetConfig::from_json(R"({"_class_name": "FluxTransformer2DModel"})",
                                              "cn.json");
            }).find("FluxControlNetModel"),
            std::string::npos);
  // The hint block's 16 channels in 2x2 patches must make in_channels.
  EXPECT_NE(error_of([] {
              FluxControlNetConfig::from_json(
                  R"({"conditioning_embedding_channels": 16, "patch_size": 1})", "cn.json");
            }).find("conditioning_embedding_channels"),
            std::string::npos);
}

// The released layouts bench measures: counted with diffusers on the meta device
// (FluxControlNetModel(num_layers=5, num_single_layers=10, num_mode=10, guidance_embeds=True) and
// (6, 0, no modes)): 349 tensors, 3,301,956,608 parameters; 222 and 2,140,876,800.
TEST(FluxControlNet, ReleaseParameterLists) {
  for (const bool pro2 : {false, true}) {
    const auto params = models::flux_controlnet_parameters(
        pro2 ? FluxControlNetConfig::union_pro_2() : FluxControlNetConfig::union_pro());
    int64_t total = 0;
    for (const auto& p : params) total += shape_numel(p.shape);
    EXPECT_EQ(params.size(), pro2 ? 222u : 349u);
    EXPECT_EQ(total, pro2 ? 2'140'876'800 : 3'301'956'608);
  }
}

// The parameter list is exactly the tensors diffusers saved.
TEST(FluxControlNet, ParameterListMatchesDiffusersCheckpoint) {
  for (const std::string net : {"union", "plain", "xlabs"}) {
    SCOPED_TRACE(net);
    const io::WeightStore store = io::WeightStore::open(kDir / net);
    const FluxControlNetConfig config =
        FluxControlNetConfig::from_json(read_text_file(kDir / net / "config.json", "test"), net);
    std::set<std::string> names;
    for (const auto& p : models::flux_controlnet_parameters(config)) {
      names.insert(p.name);
      EXPECT_EQ(store.get(p.name).shape(), p.shape) << p.name;
    }
    const std::vector<std::string> stored = store.names();
    EXPECT_EQ(names, std::set<std::string>(stored.begin(), stored.end()));
  }
}

TEST(FluxControlNet, SamplesAndTransformerMatchDiffusers) {
  for (const auto& [net, name] : kCases)
    expect_matches(models::load_flux_controlnet(kDir / net), name);
}

// XLabs' own file (BFL names, pos_embed_input, the hint block as one Sequential) is the same model.
TEST(FluxControlNet, XLabsOriginalFileMatchesDiffusers) {
  const FluxControlNetConfig config = FluxControlNetConfig::from_json(
      read_text_file(kDir / "xlabs" / "config.json", "test"), "xlabs");
  expect_matches(models::load_flux_controlnet(kDir / "xlabs_original_bf16.safetensors", {}, config),
                 "xlabs_h3w4_txt5");
}

// XLabs' two samples feed blocks 0, 1, 0, 1; the interval rule (0, 0, 1, 1) lands 36 times the
// tolerance off (3.6e-3 measured).
TEST(FluxControlNet, XLabsSamplesRepeat) {
  const Case c = golden("xlabs_h3w4_txt5");
  FluxTransformer::ControlSamples samples = run(models::load_flux_controlnet(kDir / "xlabs"), c);
  ASSERT_TRUE(samples.repeat);
  samples.repeat = false;
  EXPECT_GT(relative_error(run_main(c, samples), c.output), 20 * kTolerance);
}

TEST(FluxControlNet, UnionNeedsItsMode) {
  const FluxControlNet net = models::load_flux_controlnet(kDir / "union");
  Case c = golden("union_h4w3_txt5");
  c.mode = std::nullopt;
  EXPECT_NE(error_of([&] { run(net, c); }).find("control mode"), std::string::npos);
  c.mode = 5;
  EXPECT_NE(error_of([&] { run(net, c); }).find("0..4"), std::string::npos);
  // Another mode is another control: its samples move the output far past the tolerance.
  c.mode = 1;
  EXPECT_GT(relative_error(run_main(c, run(net, c)), c.output), 0.05);
  const FluxControlNet plain = models::load_flux_controlnet(kDir / "plain");
  Case p = golden("plain_h3w3_txt6");
  p.mode = 0;
  EXPECT_NE(error_of([&] { run(plain, p); }).find("no control modes"), std::string::npos);
}

// Without a config the shapes tell everything; a release-width model (heads of 128) with one
// block of each kind is enough to show it.
TEST(FluxControlNet, ConfigInferredFromWeights) {
  for (const bool xlabs : {false, true}) {
    FluxControlNetConfig want;
    want.trunk.num_layers = 1;
    want.trunk.num_single_layers = xlabs ? 0 : 1;
    want.trunk.num_attention_heads = 1;
    want.trunk.joint_attention_dim = 8;
    want.trunk.pooled_projection_dim = 8;
    want.trunk.guidance_embeds = !xlabs;
    want.trunk.final_layer = false;
    want.num_mode = xlabs ? 0 : 3;
    want.conditioning_embedding_channels = xlabs ? 16 : 0;
    want.patch_size = xlabs ? 2 : 1;
    const io::WeightStore weights =
        models::random_weights(models::flux_controlnet_parameters(want), DType::BF16, 7);
    const FluxControlNetConfig got = FluxControlNetConfig::infer_from_weights(weights);
    EXPECT_EQ(got.summary(), want.summary());
    EXPECT_EQ(got.trunk.summary(), want.trunk.summary());
  }
}

TEST(FluxControlNet, RefusesOtherFiles) {
  EXPECT_NE(error_of([] {
              models::load_flux_controlnet(kDir / "main_transformer.safetensors");
            }).find("not a FLUX.1 ControlNet"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow
