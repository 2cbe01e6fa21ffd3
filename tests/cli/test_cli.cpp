// The zflow binary end to end: exit codes and the one-line errors users see.
#include <gmock/gmock.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "backend/device.h"
#include "core/dtype.h"
#include "io/load_quantization.h"
#include "io/weight_store.h"
#include "test_util.h"

namespace zflow {
namespace {

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr together
};

CommandResult run_zflow(const std::string& args) {
  const std::string command = std::string(ZFLOW_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  CommandResult r{-1, {}};
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Cli, InfoDescribesAFixture) {
  const CommandResult r = run_zflow(
      "info " + test::fixture("safetensors/sharded_transformers").string() + " --tensors");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("5 tensors"));
  EXPECT_THAT(r.output, testing::HasSubstr("model.layers.0.norm.weight BF16 [4]"));
}

// A diffusers folder's pipeline class is shown (a Kontext folder differs from dev's only there),
// also for a folder that borrows every model (the Kontext fixture holds no weights).
TEST(Cli, InfoNamesAFoldersPipeline) {
  const CommandResult kontext =
      run_zflow("info " + test::fixture("flux_kontext_pipeline/tiny_kontext").string());
  EXPECT_EQ(kontext.status, 0) << kontext.output;
  EXPECT_THAT(kontext.output, testing::HasSubstr("pipeline: FluxKontextPipeline ("));
  const CommandResult dev = run_zflow("info " + test::fixture("flux_pipeline/tiny_dev").string());
  EXPECT_THAT(dev.output, testing::HasSubstr("pipeline: FluxPipeline ("));
  EXPECT_THAT(dev.output, testing::HasSubstr("architecture: t5 encoder"));
}

TEST(Cli, MissingFileIsOneClearLine) {
  const CommandResult r = run_zflow("info /nonexistent/model.safetensors");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "error: [info] /nonexistent/model.safetensors: no such file or folder\n");
}

// serve's component flags override the files of its one -m folder, as generate's do; with two
// folders they would be a guess, and are refused before anything is loaded.
TEST(Cli, ServeComponentFlagsNeedOneModel) {
  const std::string dev = test::fixture("flux_pipeline/tiny_dev").string();
  const CommandResult r =
      run_zflow("serve -m " + dev + " -m " + dev + " --vae /nonexistent/ae.safetensors --port 0");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, testing::HasSubstr("give them with --diffusion-model, or with exactly one "
                                           "-m DIR (and no --models-dir)"));
  // The one folder's override is taken, and a path that is not there is said at startup (models
  // load at their first job).
  const CommandResult one = run_zflow("serve -m " + dev + " --vae /nonexistent/ae.safetensors");
  EXPECT_EQ(one.status, 1);
  EXPECT_EQ(one.output, "error: [serve] --vae /nonexistent/ae.safetensors: no such file or folder\n");
}

TEST(Cli, BenchVaeRunsWithRandomWeights) {
  const CommandResult r =
      run_zflow("bench vae --random-weights -W 32 -H 16 --encode --threads 1 --device cpu");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("decode 32x16 batch 1, 1 threads"));
  EXPECT_THAT(r.output, testing::HasSubstr("encode 32x16"));
}

TEST(Cli, BenchRejectsBadSizes) {
  const CommandResult r = run_zflow("bench vae --random-weights -W 100");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, testing::HasSubstr("-W and -H must be positive multiples of 16"));
}

TEST(Cli, BenchNeedsExactlyOneWeightSource) {
  const CommandResult none = run_zflow("bench dit -W 256 -H 256");
  EXPECT_EQ(none.status, 1);
  EXPECT_THAT(none.output,
              testing::HasSubstr("exactly one of --random-weights and --diffusion-model"));
  const CommandResult layers =
      run_zflow("bench text-encoder --text-encoder x.safetensors --layers 2");
  EXPECT_EQ(layers.status, 1);
  EXPECT_THAT(layers.output, testing::HasSubstr("--layers only applies to --random-weights"));
}

// Z-Image-Turbo end to end with random weights (one layer each in the transformer and the text
// encoder, the real tokenizer): the run line; without a tokenizer, an error naming the flag.
TEST(Cli, BenchPipelineRunsEndToEnd) {
  const auto tokenizer = test::shared_asset("qwen3_tokenizer");
  ZF_REQUIRE_ASSET(tokenizer);
  const CommandResult r = run_zflow(
      "bench pipeline --random-weights --layers 1 -W 32 -H 32 "
      "--steps 1 -t 1 --tokenizer " +
      tokenizer.string());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("turbo 32x32 batch 1, 1 steps, 1 threads"));
  const CommandResult none = run_zflow("bench pipeline --random-weights --layers 1 -W 32 -H 32");
  EXPECT_EQ(none.status, 1);
  EXPECT_THAT(none.output, testing::HasSubstr("needs --tokenizer"));
}

// FLUX.2 editing in the benchmark: reference tokens joined, or klein KV's cache (timed apart);
// the flags are refused where they mean nothing.
TEST(Cli, BenchFlux2References) {
  const std::string args =
      "bench dit --model flux2-klein --random-weights --layers 1 -W 32 -H 32 --caption-tokens 4 "
      "--repeat 1 --references 1";
  const CommandResult joined = run_zflow(args);
  ASSERT_EQ(joined.status, 0) << joined.output;
  EXPECT_THAT(joined.output, testing::HasSubstr("4 reference tokens,"));
  const CommandResult kv = run_zflow(args + " --kv");
  ASSERT_EQ(kv.status, 0) << kv.output;
  EXPECT_THAT(kv.output, testing::HasSubstr("4 reference tokens cached"));
  EXPECT_THAT(run_zflow("bench dit --random-weights --references 1").output,
              testing::HasSubstr("--references: only with a FLUX.2 model"));
  EXPECT_THAT(run_zflow("bench dit --model flux2-klein --random-weights --kv").output,
              testing::HasSubstr("give --references"));
}

// --device cuda where there is no GPU (a CPU-only build, or no device): one line naming the flag,
// before anything is loaded. On a machine with a GPU the flag is accepted instead.
TEST(Cli, DeviceCudaWithoutAGpuIsOneLineNamingTheFlag) {
  if (!cuda_devices().empty()) GTEST_SKIP() << "a CUDA device is present";
  for (const char* args : {"bench dit --random-weights -W 256 -H 256 --device cuda",
                           "generate -m /nonexistent -p fox --device cuda"}) {
    const CommandResult r = run_zflow(args);
    EXPECT_EQ(r.status, 1) << args;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_THAT(r.output, testing::HasSubstr("--device cuda")) << args;
  }
  const CommandResult bad = run_zflow("bench vae --random-weights --device tpu");
  EXPECT_NE(bad.status, 0);
}

// Ids from Hugging Face tokenizers for the real Qwen3 tokenizer (the tokenizer goldens hold
// hundreds more; this checks the command's plumbing and output format).
TEST(Cli, TokenizePrintsIdsOnOneLine) {
  const auto tokenizer = test::shared_asset("qwen3_tokenizer");
  ZF_REQUIRE_ASSET(tokenizer);
  const CommandResult r = run_zflow("tokenize -m " + tokenizer.string() + " 'Hello world'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "9707 1879\n");
  const CommandResult bad = run_zflow("tokenize -m /nonexistent 'x'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_THAT(bad.output, testing::HasSubstr("/nonexistent"));
}

// `zflow convert` writes a GGUF that loads back: quantised matrices within Q8_0's error (half a
// step of the block's scale d = max|x| / 127, plus up to 127 times the f16 rounding of d, 2^-11 d:
// 0.5625 d, bounded by 0.57 d), everything the rules keep in float bit-identical, and an error
// naming what it cannot convert.
TEST(Cli, ConvertWritesAGgufThatLoadsBack) {
  namespace fs = std::filesystem;
  const fs::path source = test::fixture("zimage_pipeline/tiny/transformer");
  const fs::path out =
      fs::temp_directory_path() / ("zflow_convert_" + std::to_string(getpid()) + ".gguf");
  const CommandResult r =
      run_zflow("convert " + source.string() + " -o " + out.string() + " --type q8_0");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("(z-image transformer)"));

  const io::WeightStore original = io::WeightStore::open(source);
  const io::WeightStore converted = io::WeightStore::open(out);
  ASSERT_EQ(converted.names(), original.names());
  int quantised = 0;
  for (const std::string& name : original.names()) {
    const Tensor want = original.get(name);
    const Tensor got = converted.get(name);
    ASSERT_EQ(got.shape(), want.shape()) << name;
    const auto w = want.to_f32_vector();
    const auto g = got.to(DType::F32).to_f32_vector();
    if (got.dtype() != DType::Q8_0) {
      EXPECT_EQ(g, w) << name;
      continue;
    }
    ++quantised;
    for (size_t block = 0; block < w.size(); block += 32) {
      float amax = 0;
      for (size_t i = block; i < block + 32; ++i) amax = std::max(amax, std::abs(w[i]));
      for (size_t i = block; i < block + 32; ++i)
        ASSERT_LE(std::abs(g[i] - w[i]), amax / 127 * 0.57f + 1e-7f) << name << "[" << i << "]";
    }
  }
  EXPECT_GT(quantised, 0);
  fs::remove(out);

  // FLUX.2 klein in ComfyUI's layout: told apart and written as ComfyUI-GGUF's "flux".
  const CommandResult klein = run_zflow(
      "convert " + test::fixture("flux2_dit/flux2_dit_tiny_klein_comfy_bf16.safetensors").string() +
      " -o " + out.string() + " --type q8_0");
  ASSERT_EQ(klein.status, 0) << klein.output;
  EXPECT_THAT(klein.output, testing::HasSubstr("(flux.2-klein transformer)"));
  EXPECT_THAT(run_zflow("info " + out.string()).output,
              testing::HasSubstr("GGUF (architecture flux"));
  fs::remove(out);

  // Z-Image Omni: written as "lumina2" too, its SigLIP embedder kept.
  const CommandResult omni =
      run_zflow("convert " + test::fixture("zimage_omni/tiny_omni/transformer").string() + " -o " +
                out.string() + " --type q8_0");
  ASSERT_EQ(omni.status, 0) << omni.output;
  EXPECT_THAT(omni.output, testing::HasSubstr("(z-image omni transformer)"));
  EXPECT_TRUE(io::WeightStore::open(out).contains("siglip_embedder.1.weight"));
  fs::remove(out);

  const CommandResult vae = run_zflow(
      "convert " + test::fixture("zimage_pipeline/tiny/vae").string() + " -o /tmp/never.gguf");
  EXPECT_EQ(vae.status, 1);
  EXPECT_THAT(vae.output, testing::HasSubstr("holds autoencoder kl"));
  const CommandResult type =
      run_zflow("convert " + source.string() + " -o /tmp/never.gguf --type q3_k");
  EXPECT_THAT(type.output, testing::HasSubstr("--type q3_k: expected q8_0"));
}

// `zflow convert --type int8` writes the ComfyUI int8 file that --int8 would make at load (the
// writer's own test holds every tensor to the bit); the output's extension follows the type.
TEST(Cli, ConvertWritesAComfyInt8File) {
  namespace fs = std::filesystem;
  const fs::path source = test::fixture("zimage_pipeline/tiny/transformer");
  const fs::path out =
      fs::temp_directory_path() / ("zflow_convert_" + std::to_string(getpid()) + ".safetensors");
  const CommandResult r =
      run_zflow("convert " + source.string() + " -o " + out.string() + " --type int8");
  ASSERT_EQ(r.status, 0) << r.output;
  const io::WeightStore converted = io::WeightStore::open(out);
  const io::WeightStore want = io::quantize_at_load(io::WeightStore::open(source),
                                                    io::LoadQuantization::Int8, Device::CPU);
  ASSERT_EQ(converted.names(), want.names());
  int int8 = 0;
  for (const std::string& name : want.names()) {
    EXPECT_EQ(converted.get(name).dtype(), want.get(name).dtype()) << name;
    int8 += want.get(name).dtype() == DType::I8;
  }
  EXPECT_GT(int8, 0);
  fs::remove(out);
  const CommandResult gguf =
      run_zflow("convert " + source.string() + " -o /tmp/never.gguf --type int8");
  EXPECT_EQ(gguf.status, 1);
  EXPECT_THAT(gguf.output, testing::HasSubstr("--type int8 writes a .safetensors file"));
}

}  // namespace
}  // namespace zflow
