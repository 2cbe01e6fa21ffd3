// AutoencoderKL against diffusers on the tiny random config of
// tools/golden/make_autoencoder.py (FLUX.1 structure, channels [16, 32, 32, 32], 8
// groups, bf16-valued weights): both checkpoint layouts must reproduce diffusers'
// posterior and decode. Tolerance: max |got - want| / max |want| <= 1e-4, the project's
// fp32-CPU-versus-fp32-torch bound (DESIGN.md); the differences are float32 summation
// order through ~30 convolutions.
#include "models/autoencoder_kl.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "io/key_map_autoencoder.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::cosine;
using test::relative_error;

using models::AutoencoderKL;
using models::AutoencoderKLConfig;

const std::filesystem::path kFolder = test::fixture("autoencoder/tiny_diffusers/vae");
const std::filesystem::path kOriginal =
    test::fixture("autoencoder/autoencoder_tiny_original_ae.safetensors");
const std::filesystem::path kIo =
    test::fixture("autoencoder/autoencoder_tiny_diffusers_io.safetensors");

constexpr double kTolerance = 1e-4;

struct Golden {
  io::SafetensorsFile file = io::SafetensorsFile::open(kIo);
  Tensor get(const std::string& name) const { return file.tensor(name); }
};

void expect_matches_diffusers(const AutoencoderKL& vae, const Golden& g) {
  const AutoencoderKL::Posterior p = vae.encode(g.get("image"));
  EXPECT_LE(relative_error(p.mean, g.get("posterior_mean")), kTolerance);
  EXPECT_LE(relative_error(p.logvar, g.get("posterior_logvar")), kTolerance);
  EXPECT_LE(relative_error(vae.decode(g.get("z")), g.get("decoded")), kTolerance);
}

TEST(AutoencoderKL, FixtureIsCurrent) {
  const Golden g;
  EXPECT_EQ(g.file.metadata().at("zflow_fixture_format"), "1");
  EXPECT_EQ(g.file.metadata().at("generator"), "tools/golden/make_autoencoder.py");
}

TEST(AutoencoderKL, DiffusersFolderMatchesDiffusers) {
  const AutoencoderKL vae = models::load_autoencoder_kl(kFolder);
  EXPECT_EQ(vae.config().norm_num_groups, 8);  // read from config.json
  EXPECT_EQ(vae.config().block_out_channels, (std::vector<int64_t>{16, 32, 32, 32}));
  expect_matches_diffusers(vae, Golden{});
}

TEST(AutoencoderKL, OriginalLayoutMatchesDiffusers) {
  const auto config = AutoencoderKLConfig::from_json_file(kFolder / "config.json");
  expect_matches_diffusers(models::load_autoencoder_kl(kOriginal, config), Golden{});
}

// A ComfyUI checkpoint keeps the VAE under `first_stage_model.` next to other models.
TEST(AutoencoderKL, ComfyCheckpointPrefixIsStripped) {
  const auto config = AutoencoderKLConfig::from_json_file(kFolder / "config.json");
  io::WeightStore checkpoint = io::WeightStore::open(kOriginal).renamed(
      [](const std::string& n) -> std::optional<std::string> { return "first_stage_model." + n; });
  checkpoint.add("model.diffusion_model.input_blocks.0.0.weight", Tensor::zeros({4}, DType::F32));
  const Golden g;
  const AutoencoderKL vae = models::load_autoencoder_kl(checkpoint, config);
  EXPECT_LE(relative_error(vae.decode(g.get("z")), g.get("decoded")), kTolerance);
}

TEST(AutoencoderKL, PosteriorSampleUsesTorchGenerator) {
  const Golden g;
  const AutoencoderKL vae = models::load_autoencoder_kl(kFolder);
  const AutoencoderKL::Posterior p = vae.encode(g.get("image"));
  // The fixture's eps came from torch on a CPU whose vectorised randn kernel it records.
  const NormalMath math = g.file.metadata().at("torch_cpu_capability") == "AVX2"
                              ? NormalMath::Avx2Cephes
                              : NormalMath::Libm;
  Generator gen(std::stoull(g.file.metadata().at("eps_seed")), math);
  EXPECT_LE(relative_error(AutoencoderKL::sample(p, gen), g.get("sample")), kTolerance);
  EXPECT_LE(relative_error(AutoencoderKL::sample_with_noise(p, g.get("eps")), g.get("sample")),
            kTolerance);
}

TEST(AutoencoderKL, LatentNormalisationRoundTrips) {
  const AutoencoderKL vae = models::load_autoencoder_kl(kFolder);
  const Tensor latent = Tensor::from_f32({1, 1, 1, 2}, std::vector<float>{0.1159f, 1.0f});
  const auto z = vae.normalize_latent(latent).to_f32_vector();
  EXPECT_FLOAT_EQ(z[0], 0.0f);
  EXPECT_NEAR(z[1], (1.0 - 0.1159) * 0.3611, 1e-7);
  const auto back = vae.denormalize_latent(vae.normalize_latent(latent)).to_f32_vector();
  EXPECT_NEAR(back[1], 1.0f, 1e-6);
}

TEST(AutoencoderKL, WrongShapeNamesTheTensor) {
  const io::WeightStore good = io::WeightStore::open(kFolder);
  io::WeightStore bad = good.renamed([](const std::string& n) -> std::optional<std::string> {
    if (n == "decoder.up_blocks.2.resnets.1.conv2.weight") return std::nullopt;
    return n;
  });
  bad.add("decoder.up_blocks.2.resnets.1.conv2.weight", Tensor::zeros({32, 16, 3, 3}, DType::F32),
          "bad.safetensors");
  const auto config = AutoencoderKLConfig::from_json_file(kFolder / "config.json");
  try {
    AutoencoderKL vae(config, bad);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "[load] bad.safetensors: 'decoder.up_blocks.2.resnets.1.conv2.weight' has shape "
                 "[32, 16, 3, 3], expected [32, 32, 3, 3]");
  }
}

TEST(AutoencoderKL, ParameterListMatchesDiffusersStateDict) {
  const auto config = AutoencoderKLConfig::from_json_file(kFolder / "config.json");
  const io::SafetensorsFile file =
      io::SafetensorsFile::open(kFolder / "diffusion_pytorch_model.safetensors");
  const auto params = models::autoencoder_kl_parameters(config);
  ASSERT_EQ(params.size(), file.tensors().size());
  for (const auto& p : params) {
    const io::TensorInfo* info = file.find(p.name);
    ASSERT_NE(info, nullptr) << p.name;
    EXPECT_EQ(info->shape, p.shape) << p.name;
  }
}

// The FLUX.1 release has 83,819,683 parameters (facts/zimage.md section 4).
TEST(AutoencoderKL, DefaultConfigIsFluxRelease) {
  int64_t total = 0;
  for (const auto& p : models::autoencoder_kl_parameters(AutoencoderKLConfig{}))
    total += shape_numel(p.shape);
  EXPECT_EQ(total, 83'819'683);
}

TEST(AutoencoderKL, ConfigInferredFromWeightShapes) {
  AutoencoderKLConfig config;
  config.in_channels = 4;
  config.out_channels = 5;
  config.latent_channels = 6;
  config.block_out_channels = {32, 64, 96};
  config.layers_per_block = 1;
  config.mid_block_add_attention = false;
  config.use_quant_conv = true;
  const auto inferred = AutoencoderKLConfig::infer_from_weights(
      models::autoencoder_kl_random_weights(config, DType::BF16, 1));
  EXPECT_EQ(inferred.summary(), config.summary());
}

// The group count is not in the weights; 32 (FLUX.1) must fit, else config.json is needed.
TEST(AutoencoderKL, InferenceRejectsChannelsThatDoNotFitDefaultGroups) {
  try {
    AutoencoderKLConfig::infer_from_weights(io::WeightStore::open(kFolder));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not split into norm_num_groups 32"), std::string::npos)
        << e.what();
  }
}

TEST(AutoencoderKL, RandomWeightsBindAndRun) {
  AutoencoderKLConfig config;
  config.block_out_channels = {32, 32};
  config.layers_per_block = 1;
  const AutoencoderKL vae(config, models::autoencoder_kl_random_weights(config, DType::BF16, 5));
  const Tensor image = vae.decode(Tensor::zeros({1, 16, 3, 5}, DType::F32));
  EXPECT_EQ(image.shape(), (Shape{1, 3, 6, 10}));
  for (float v : image.to_f32_vector()) ASSERT_TRUE(std::isfinite(v));
}

TEST(KeyMapAutoencoder, OriginalNamesBecomeDiffusersNames) {
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  EXPECT_EQ(io::detect_autoencoder_layout(original), io::AutoencoderLayout::Original);
  const io::AutoencoderCounts counts = io::count_original_autoencoder_layers(original);
  EXPECT_EQ(counts.levels, 4);
  EXPECT_EQ(counts.layers_per_block, 2);
  const io::WeightStore renamed = io::original_autoencoder_to_diffusers(original, counts);
  const io::WeightStore diffusers = io::WeightStore::open(kFolder);
  EXPECT_EQ(renamed.names(), diffusers.names());
  for (const auto& name : diffusers.names())
    EXPECT_EQ(renamed.get(name).shape(), diffusers.get(name).shape()) << name;
  // up.3 is up_blocks.0: same values, not only the same shape.
  EXPECT_EQ(renamed.get("decoder.up_blocks.0.resnets.0.conv1.weight").to_f32_vector(),
            original.get("decoder.up.3.block.0.conv1.weight").to_f32_vector());
}

// The inverse map gives back the original file's names, shapes (1x1 attention kernels
// included) and values from the diffusers folder's tensors.
TEST(KeyMapAutoencoder, DiffusersNamesBecomeOriginalNamesAgain) {
  const io::WeightStore original = io::WeightStore::open(kOriginal);
  const io::WeightStore back = io::diffusers_autoencoder_to_original(
      io::WeightStore::open(kFolder), io::count_original_autoencoder_layers(original));
  ASSERT_EQ(back.names(), original.names());
  for (const auto& name : original.names()) {
    EXPECT_EQ(back.get(name).shape(), original.get(name).shape()) << name;
    EXPECT_EQ(back.get(name).to_f32_vector(), original.get(name).to_f32_vector()) << name;
  }
  io::WeightStore extra = io::WeightStore::open(kFolder);
  extra.add("decoder.up_blocks.9.resnets.0.conv1.weight", Tensor::zeros({1}, DType::F32));
  EXPECT_THROW(io::diffusers_autoencoder_to_original(extra, {4, 2}), Error);
}

TEST(KeyMapAutoencoder, UnknownOriginalNameIsNamed) {
  io::WeightStore original = io::WeightStore::open(kOriginal);
  original.add("encoder.down.0.attn.0.q.weight", Tensor::zeros({1}, DType::F32), "x.safetensors");
  try {
    io::original_autoencoder_to_diffusers(original,
                                          io::count_original_autoencoder_layers(original));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'encoder.down.0.attn.0.q.weight'"), std::string::npos)
        << e.what();
  }
}

TEST(KeyMapAutoencoder, DetectsLayoutsAndPrefixes) {
  const io::WeightStore diffusers = io::WeightStore::open(kFolder);
  EXPECT_EQ(io::detect_autoencoder_layout(diffusers), io::AutoencoderLayout::Diffusers);
  const io::WeightStore prefixed = diffusers.renamed(
      [](const std::string& n) -> std::optional<std::string> { return "vae." + n; });
  EXPECT_EQ(io::strip_autoencoder_prefix(prefixed).names(), diffusers.names());
  io::WeightStore other;
  other.add("model.layers.0.weight", Tensor::zeros({1}, DType::F32));
  EXPECT_THROW(io::detect_autoencoder_layout(other), Error);
}

}  // namespace
}  // namespace zflow
