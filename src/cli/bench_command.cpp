// `zflow bench`: times model components at full size. With --random-weights no files are
// needed: the release architecture is built with random values (speed does not depend
// on them). Every line says what ran, on how many threads, how fast, and the peak memory.
#include <fmt/format.h>

#include <chrono>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/memory_usage.h"
#include "core/thread_pool.h"
#include "models/autoencoder_kl.h"

namespace zflow::cli {

namespace {

struct VaeOptions {
  bool random_weights = false;
  std::string vae_path;
  int64_t width = 1024, height = 1024;
  int batch = 1;
  int repeat = 1;
  bool encode = false;
  std::string dtype = "bf16";
  int threads = 0;
};

DType parse_weight_dtype(const std::string& name) {
  if (name == "bf16") return DType::BF16;
  if (name == "f16") return DType::F16;
  if (name == "f32") return DType::F32;
  fail("[bench] --dtype must be bf16, f16 or f32, got '{}'", name);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run_vae_bench(const VaeOptions& o) {
  if (o.threads > 0) ThreadPool::set_compute_threads(o.threads);
  ZF_CHECK(o.random_weights != !o.vae_path.empty(),
           "[bench] give exactly one of --random-weights and --vae FILE");
  ZF_CHECK(o.width > 0 && o.height > 0 && o.width % 16 == 0 && o.height % 16 == 0,
           "[bench] -W and -H must be positive multiples of 16, got {}x{}", o.width, o.height);
  const auto load_start = std::chrono::steady_clock::now();
  const models::AutoencoderKL vae =
      o.random_weights ? models::AutoencoderKL(
                             models::AutoencoderKLConfig{},
                             models::autoencoder_kl_random_weights(models::AutoencoderKLConfig{},
                                                                   parse_weight_dtype(o.dtype), 1))
                       : models::load_autoencoder_kl(o.vae_path);
  const auto& config = vae.config();
  const std::string source =
      o.random_weights ? fmt::format("random {} weights", o.dtype) : o.vae_path;
  fmt::print("vae: {} ({}), ready in {:.2f} s\n", config.summary(), source,
             seconds_since(load_start));

  const int64_t factor = int64_t{1} << (config.levels() - 1);
  const Tensor latent = Tensor::zeros(
      {o.batch, config.latent_channels, o.height / factor, o.width / factor}, DType::F32);
  const double flops = o.batch * models::autoencoder_kl_decoder_flops(config, o.height, o.width);
  const int threads = ThreadPool::compute().threads();
  for (int r = 0; r < o.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const Tensor image = vae.decode(latent);
    const double s = seconds_since(t0);
    fmt::print(
        "decode {}x{} batch {}, {} threads: {:.3f} s, {:.2f} TFLOP, {:.1f} GFLOP/s, peak RSS "
        "{:.2f} GB\n",
        o.width, o.height, o.batch, threads, s, flops / 1e12, flops / s / 1e9,
        static_cast<double>(peak_rss_bytes()) / 1e9);
    if (o.encode) {
      const auto t1 = std::chrono::steady_clock::now();
      vae.encode(image);
      fmt::print("encode {}x{} batch {}, {} threads: {:.3f} s, peak RSS {:.2f} GB\n", o.width,
                 o.height, o.batch, threads, seconds_since(t1),
                 static_cast<double>(peak_rss_bytes()) / 1e9);
    }
  }
  return 0;
}

}  // namespace

Run add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time model components at full size");
  cmd->require_subcommand(1);
  auto* vae = cmd->add_subcommand("vae", "the FLUX.1 / Z-Image autoencoder: decode (and encode)");
  auto o = std::make_shared<VaeOptions>();
  vae->add_flag("--random-weights", o->random_weights,
                "the release architecture with random weights");
  vae->add_option("--vae", o->vae_path, "an autoencoder file or diffusers vae/ folder");
  vae->add_option("-W,--width", o->width, "image width in pixels")->capture_default_str();
  vae->add_option("-H,--height", o->height, "image height in pixels")->capture_default_str();
  vae->add_option("-b,--batch", o->batch, "images per call")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  vae->add_option("--repeat", o->repeat, "timed runs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  vae->add_flag("--encode", o->encode, "also time encoding the decoded image");
  vae->add_option("--dtype", o->dtype, "random weight dtype: bf16, f16, f32")
      ->capture_default_str();
  vae->add_option("-t,--threads", o->threads, "compute threads (default: all cores)");
  return [o, vae] {
    if (vae->parsed()) return run_vae_bench(*o);
    return 1;
  };
}

}  // namespace zflow::cli
