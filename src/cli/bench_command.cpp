// `zflow bench`: times model components at full size. With --random-weights no files are
// needed: the release architecture is built with random values (speed does not depend
// on them), directly on the device with --device cuda (one tensor at a time, in the weight
// dtype). Every line says what ran, where (threads or GPU), how fast (time, TFLOP, TFLOP/s)
// and the peak memory (RSS; on the GPU the tensors' peak VRAM and the pool's). --json FILE
// appends the same as one JSON object per run, for scripts/gpu-check.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>

#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/gemm_s8.h"
#include "backend/device.h"
#include "cli/commands.h"
#include "cli/component_flags.h"
#include "core/error.h"
#include "core/memory_usage.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "models/autoencoder_kl.h"
#include "models/esrgan.h"
#include "models/flux2_dit.h"
#include "models/flux_controlnet.h"
#include "models/flux_dit.h"
#include "models/qwen3.h"
#include "models/span.h"
#include "models/srvgg_compact.h"
#include "models/zimage_controlnet.h"
#include "models/zimage_dit.h"
#include "pipeline/upscale.h"
#include "pipeline/zimage_pipeline.h"
#include "text/bpe_tokenizer.h"

namespace zflow::cli {

namespace {

// Options every bench subcommand shares.
struct Common {
  bool random_weights = false;
  std::string weights_path;
  std::string dtype = "bf16";
  bool fp8 = false;
  bool int8 = false;
  bool offload = false;
  int repeat = 1;
  int threads = 0;
  std::string device;            // --device; empty: the default
  std::string matmul_precision;  // --matmul-precision; empty: the default
  std::string json_path;
};

void add_common_options(CLI::App* cmd, Common& o, const std::string& file_flag,
                        const std::string& file_help) {
  cmd->add_flag("--random-weights", o.random_weights,
                "the release architecture with random weights (no files)");
  cmd->add_option(file_flag, o.weights_path, file_help);
  cmd->add_option("--dtype", o.dtype,
                  "random weight dtype: bf16, f16, f32, or a GGML block type for the matrices "
                  "(q8_0, q4_0, q4_k, ...)")
      ->capture_default_str();
  cmd->add_flag("--fp8", o.fp8,
                "transformers: block linears quantised to scaled float8 e4m3 at load");
  cmd->add_flag("--int8", o.int8,
                "transformers: block linears quantised at load as ComfyUI's int8 convrot files "
                "are (ConvRot groups of 256, row scales; W8A8 on the CPU)")
      ->excludes("--fp8");
  cmd->add_flag("--offload", o.offload,
                "transformers and text encoders: blocks streamed from host memory (GPU only)");
  cmd->add_option("--repeat", o.repeat, "timed runs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("-t,--threads", o.threads, "compute threads (default: all cores)");
  add_device_flag(cmd, o.device);
  add_matmul_precision_flag(cmd, o.matmul_precision);
  cmd->add_option("--json", o.json_path, "also append each run as a JSON line to this file");
}

DType weight_dtype(const Common& o) {
  if (o.dtype == "bf16") return DType::BF16;
  if (o.dtype == "f16") return DType::F16;
  if (o.dtype == "f32") return DType::F32;
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q4_K,
                  DType::Q5_K, DType::Q6_K}) {
    std::string name(dtype_name(t));  // "Q4_K"
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    if (o.dtype == name) return t;
  }
  fail(
      "[bench] --dtype must be bf16, f16, f32, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k or q6_k, "
      "got '{}'",
      o.dtype);
}

io::LoadQuantization quantization(const Common& o) {
  return o.fp8 ? io::LoadQuantization::Fp8
               : (o.int8 ? io::LoadQuantization::Int8 : io::LoadQuantization::None);
}

// Random transformer weights as --fp8 or --int8 would load them.
io::WeightStore quantize_if(const Common& o, io::WeightStore weights, Device device) {
  return io::quantize_at_load(std::move(weights), quantization(o), device);
}

// Where the bench runs, checked before anything is built.
models::Placement prepare(const Common& o, const std::string& file_flag) {
  if (o.threads > 0) ThreadPool::set_compute_threads(o.threads);
  apply_matmul_precision(o.matmul_precision);
  ZF_CHECK(o.random_weights == o.weights_path.empty(),
           "[bench] give exactly one of --random-weights and {} FILE", file_flag);
  models::Placement at = models::Placement::on(resolve_device(o.device));
  ZF_CHECK(!o.offload || at.device == Device::CUDA,
           "[bench] --offload streams weights to a GPU; it needs --device cuda");
  at.offload = o.offload;
  return at;
}

// The CPU kernels the matmuls run on, for the report: bf16 (and fp8, GGUF) weights', and int8
// weights' where they have their own.
std::string cpu_matmuls() {
  const std::string isa(cpu::gemm_isa_name(cpu::gemm_default_isa(DType::BF16)));
  return cpu::gemm_s8_available() ? fmt::format("matmuls on {}, int8 ones on avx512vnni", isa)
                                  : fmt::format("matmuls on {}", isa);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `work` `repeat` times and prints one line each: what, time, rate and peak memory. On
// the GPU every run starts from a reset peak and ends when the GPU is idle again (the models
// return their results on the host, which waits for the work; cuda_synchronize makes sure).
void timed(const Common& o, const std::string& bench, const std::string& what,
           const models::Placement& at, double flops, const std::function<void()>& work) {
  const bool gpu = at.device == Device::CUDA;
  for (int r = 0; r < o.repeat; ++r) {
    if (gpu) cuda_reset_peak_memory();
    const auto t0 = std::chrono::steady_clock::now();
    work();
    if (gpu) cuda_synchronize();
    const double s = seconds_since(t0);
    std::string rate;
    if (flops > 0)
      rate = gpu ? fmt::format(", {:.2f} TFLOP, {:.1f} TFLOP/s", flops / 1e12, flops / s / 1e12)
                 : fmt::format(", {:.2f} TFLOP, {:.1f} GFLOP/s", flops / 1e12, flops / s / 1e9);
    const CudaMemoryStats vram = gpu ? cuda_memory_stats() : CudaMemoryStats{};
    const std::string where =
        gpu ? fmt::format("cuda ({}, {} attention)", cuda_devices().at(0).name,
                          cuda_attention_kernel())
            : fmt::format("{} threads, {}", ThreadPool::compute().threads(), cpu_matmuls());
    const std::string memory =
        gpu ? fmt::format("peak VRAM {:.2f} GB (pool {:.2f} GB)",
                          static_cast<double>(vram.peak_in_use_bytes) / 1e9,
                          static_cast<double>(vram.peak_reserved_bytes) / 1e9)
            : fmt::format("peak RSS {:.2f} GB", static_cast<double>(peak_rss_bytes()) / 1e9);
    fmt::print("{}, {}: {:.3f} s{}, {}\n", what, where, s, rate, memory);
    std::fflush(stdout);
    if (o.json_path.empty()) continue;
    nlohmann::json j = {{"bench", bench},
                        {"what", what},
                        {"device", std::string(device_name(at.device))},
                        {"activations", std::string(dtype_name(at.activations))},
                        {"weights", o.random_weights ? "random " + o.dtype : o.weights_path},
                        {"fp8", o.fp8},
                        {"int8", o.int8},
                        {"offload", at.offload},
                        {"run", r + 1},
                        {"seconds", s},
                        {"tflop", flops / 1e12},
                        {"tflops", flops > 0 ? flops / s / 1e12 : 0.0},
                        {"peak_rss_gb", static_cast<double>(peak_rss_bytes()) / 1e9}};
    if (gpu) {
      j["gpu"] = cuda_devices().at(0).name;
      j["attention"] = cuda_attention_kernel();
      j["peak_vram_gb"] = static_cast<double>(vram.peak_in_use_bytes) / 1e9;
      j["peak_pool_gb"] = static_cast<double>(vram.peak_reserved_bytes) / 1e9;
    }
    std::ofstream out(o.json_path, std::ios::app);
    out << j.dump() << "\n";
    ZF_CHECK(out.good(), "[bench] --json {}: cannot write", o.json_path);
  }
}

// "<component>: <config> (<weights>), ready in N s": what was built and how long it took.
void announce(const std::string& component, const std::string& config_summary, const Common& o,
              std::chrono::steady_clock::time_point t0) {
  fmt::print("{}: {} ({}{}{}{}), ready in {:.2f} s\n", component, config_summary,
             o.random_weights ? "random " + o.dtype + " weights" : o.weights_path,
             o.fp8 ? ", --fp8" : "", o.int8 ? ", --int8" : "", o.offload ? ", --offload" : "",
             seconds_since(t0));
}

void check_size(int64_t width, int64_t height) {
  ZF_CHECK(width > 0 && height > 0 && width % 16 == 0 && height % 16 == 0,
           "[bench] -W and -H must be positive multiples of 16, got {}x{}", width, height);
}

struct VaeOptions : Common {
  int64_t width = 1024, height = 1024;
  int batch = 1;
  bool encode = false;
};

int run_vae(const VaeOptions& o) {
  const models::Placement at = prepare(o, "--vae");
  check_size(o.width, o.height);
  const auto t0 = std::chrono::steady_clock::now();
  const models::AutoencoderKLConfig release;
  const models::AutoencoderKL vae =
      o.random_weights
          ? models::AutoencoderKL(
                release,
                models::autoencoder_kl_random_weights(release, weight_dtype(o), 1, at.device), at)
          : models::load_autoencoder_kl(o.weights_path, std::nullopt, at);
  const auto& c = vae.config();
  announce("vae", c.summary(), o, t0);
  const int64_t factor = int64_t{1} << (c.levels() - 1);
  const Tensor latent =
      Tensor::zeros({o.batch, c.latent_channels, o.height / factor, o.width / factor}, DType::F32);
  Tensor image;
  timed(o, "vae", fmt::format("decode {}x{} batch {}", o.width, o.height, o.batch), at,
        o.batch * models::autoencoder_kl_decoder_flops(c, o.height, o.width),
        [&] { image = vae.decode(latent); });
  if (o.encode)
    timed(o, "vae", fmt::format("encode {}x{} batch {}", o.width, o.height, o.batch), at, 0,
          [&] { vae.encode(image); });
  return 0;
}

struct UpscaleOptions : Common {
  int64_t width = 512, height = 512;    // the input picture's
  std::string architecture = "esrgan";  // with random weights: esrgan or compact
};

// The release architecture with random weights: RealESRGAN_x4plus's RRDBNet, realesr-general-x4v3's
// Compact network or a 48-feature 4x SPAN.
std::unique_ptr<models::Upscaler> random_upscaler(const UpscaleOptions& o,
                                                  const models::Placement& at) {
  if (o.architecture == "span") {
    const models::SpanConfig release;
    return std::make_unique<models::Span>(
        release,
        models::random_weights(models::span_parameters(release), weight_dtype(o), 1, at.device),
        at);
  }
  if (o.architecture == "compact") {
    const models::CompactConfig release;
    return std::make_unique<models::SrvggCompact>(
        release,
        models::random_weights(models::compact_parameters(release), weight_dtype(o), 1, at.device),
        at);
  }
  const models::EsrganConfig release;
  return std::make_unique<models::Esrgan>(
      release,
      models::random_weights(models::esrgan_parameters(release), weight_dtype(o), 1, at.device),
      at);
}

// An upscaler (a release architecture with random weights, or a file) on one picture, tiled as
// `zflow upscale` runs it.
int run_upscale(const UpscaleOptions& o) {
  const models::Placement at = prepare(o, "--upscale-model");
  ZF_CHECK(o.width > 0 && o.height > 0, "[bench] -W and -H must be positive, got {}x{}", o.width,
           o.height);
  const auto t0 = std::chrono::steady_clock::now();
  const std::unique_ptr<models::Upscaler> model =
      o.random_weights ? random_upscaler(o, at) : models::load_upscaler(o.weights_path, at);
  announce("upscaler", model->summary(), o, t0);
  Tensor image = Tensor::empty({1, model->in_channels(), o.height, o.width}, DType::F32);
  float* x = image.data<float>();
  for (int64_t i = 0; i < image.numel(); ++i) x[i] = static_cast<float>(i * 7919 % 256) / 255.0f;
  timed(o, "upscale",
        fmt::format("{}x{} -> {}x{}", o.width, o.height, o.width * model->scale(),
                    o.height * model->scale()),
        at, model->flops(o.height, o.width), [&] { pipeline::upscale_tiled(*model, image); });
  return 0;
}

struct DitOptions : Common {
  std::string model = "zimage";
  int64_t width = 1024, height = 1024;
  int batch = 1;
  std::optional<int64_t> caption_tokens;
  int layers = 0;
  std::string reference;  // a second transformer file: report the output's error against it
  std::vector<std::string> loras;  // FILE[:SCALE], merged into the Z-Image transformer at load
  std::string controlnet;          // union-1.0 / union-2.1 (random weights) or a ControlNet file
  int references = 0;              // FLUX.2: reference images of the output's size
  bool kv = false;                 // FLUX.2: the references as klein KV's cache
};

// --controlnet for a Z-Image transformer `main`: a released Union layout with random weights,
// or a file.
std::optional<models::ZImageControlNet> bench_controlnet(const DitOptions& o,
                                                         const models::ZImageDiTConfig& main,
                                                         const models::Placement& at) {
  if (o.controlnet.empty()) return std::nullopt;
  if (o.controlnet != "union-1.0" && o.controlnet != "union-2.1")
    return models::load_zimage_controlnet(o.controlnet, main, at);
  const auto config = models::ZImageControlNetConfig::union_release(
      o.controlnet == "union-1.0" ? models::ZImageControlRefiner::Plain
                                  : models::ZImageControlRefiner::ControlBlocks,
      main);
  return models::ZImageControlNet(
      config, main,
      models::random_weights(models::zimage_controlnet_parameters(config, main), weight_dtype(o), 2,
                             at.offload ? Device::CPU : at.device),
      at);
}

// --controlnet for FLUX.1: Shakker-Labs' Union-Pro layouts with random weights, or a file.
std::optional<models::FluxControlNet> bench_flux_controlnet(const DitOptions& o,
                                                            const models::Placement& at) {
  if (o.controlnet.empty()) return std::nullopt;
  if (o.controlnet != "union-pro" && o.controlnet != "union-pro-2")
    return models::load_flux_controlnet(o.controlnet, at);
  const auto config = o.controlnet == "union-pro" ? models::FluxControlNetConfig::union_pro()
                                                  : models::FluxControlNetConfig::union_pro_2();
  return models::FluxControlNet(
      config,
      models::random_weights(models::flux_controlnet_parameters(config), weight_dtype(o), 2,
                             at.offload ? Device::CPU : at.device),
      at);
}

// ||got - want|| / ||want|| over every element, in double.
double relative_error(const Tensor& got, const Tensor& want) {
  const Tensor g = got.to(Device::CPU).to(DType::F32).contiguous();
  const Tensor w = want.to(Device::CPU).to(DType::F32).contiguous();
  ZF_CHECK(g.shape() == w.shape(), "[bench] outputs of different shapes");
  double diff = 0.0, norm = 0.0;
  const float* a = g.data<float>();
  const float* b = w.data<float>();
  for (int64_t i = 0; i < g.numel(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

// FLUX.1 at the shape diffusers' baseline uses: 512 T5 tokens unless told otherwise.
int run_flux_dit(const DitOptions& o, const models::Placement& at) {
  const int64_t text_tokens = o.caption_tokens.value_or(512);
  const auto t0 = std::chrono::steady_clock::now();
  models::FluxDiTConfig release;
  if (o.layers > 0) {
    release.num_layers = o.layers;
    release.num_single_layers = 2 * o.layers;
  }
  ZF_CHECK(o.layers == 0 || o.random_weights, "[bench] --layers only applies to --random-weights");
  const models::FluxTransformer dit =
      o.random_weights
          ? models::FluxTransformer(
                release,
                // --fp8 quantises host weights, which the model then uploads
                // once; --offload copies host weights into pinned memory.
                quantize_if(o,
                            models::flux_dit_random_weights(
                                release, weight_dtype(o), 1,
                                o.fp8 || o.int8 || o.offload ? Device::CPU : at.device),
                            at.device),
                at)
          : models::load_flux_transformer(o.weights_path, {}, quantization(o), at);
  const auto& c = dit.config();
  announce("flux.1 transformer", c.summary(), o, t0);
  const int64_t rows = o.height / 16, cols = o.width / 16;
  Generator noise(0);
  const Tensor x = noise.randn({o.batch, rows * cols, c.in_channels});
  const Tensor txt = noise.randn({o.batch, text_tokens, c.joint_attention_dim});
  const Tensor pooled = noise.randn({o.batch, c.pooled_projection_dim});
  const auto ids = models::flux_image_ids(rows, cols);
  const std::vector<float> t(static_cast<size_t>(o.batch), 0.5f);
  const std::vector<float> guidance(c.guidance_embeds ? static_cast<size_t>(o.batch) : 0, 3.5f);
  // With a ControlNet, each timed forward runs it first, as every denoising step does.
  const std::optional<models::FluxControlNet> controlnet = bench_flux_controlnet(o, at);
  double flops = models::flux_dit_forward_flops(c, rows * cols, text_tokens);
  Tensor control;
  std::optional<int> mode;
  std::vector<float> controlnet_guidance;
  if (controlnet) {
    const models::FluxControlNetConfig& cc = controlnet->config();
    fmt::print("controlnet: {}\n", cc.summary());
    flops += models::flux_controlnet_forward_flops(cc, rows * cols, text_tokens);
    control = cc.takes_pixels() ? noise.randn({o.batch, 3, o.height, o.width})
                                : noise.randn({o.batch, rows * cols, cc.trunk.in_channels});
    if (cc.num_mode > 0) mode = 0;
    if (cc.trunk.guidance_embeds) controlnet_guidance = guidance;
  }
  Tensor out;
  timed(o, "dit",
        fmt::format("forward {}x{} batch {}, {} text tokens{}", o.width, o.height, o.batch,
                    text_tokens, controlnet ? ", with a ControlNet" : ""),
        at, o.batch * flops, [&] {
          if (!controlnet) {
            out = dit.forward(x, ids, txt, pooled, t, guidance);
            return;
          }
          const auto samples =
              controlnet->forward(x, ids, txt, pooled, t, controlnet_guidance, control, mode, 1.0f);
          out = dit.forward(x, ids, txt, pooled, t, guidance, &samples);
        });
  if (!o.reference.empty()) {
    const Tensor want = models::load_flux_transformer(o.reference, {}, {}, at)
                            .forward(x, ids, txt, pooled, t, guidance);
    fmt::print("relative error against {}: {:.3e}\n", o.reference, relative_error(out, want));
  }
  return 0;
}

// FLUX.2 (klein 4B or dev) at 512 text tokens unless told otherwise, as its pipelines pad them.
int run_flux2_dit(const DitOptions& o, const models::Placement& at) {
  const int64_t text_tokens = o.caption_tokens.value_or(512);
  const auto t0 = std::chrono::steady_clock::now();
  models::Flux2DiTConfig release = o.model == "flux2-dev" ? models::Flux2DiTConfig{}
                                   : o.model == "flux2-klein-9b"
                                       ? models::Flux2DiTConfig::klein_9b()
                                       : models::Flux2DiTConfig::klein_4b();
  if (o.layers > 0) {
    release.num_single_layers = o.layers * release.num_single_layers / release.num_layers;
    release.num_layers = o.layers;
  }
  ZF_CHECK(o.layers == 0 || o.random_weights, "[bench] --layers only applies to --random-weights");
  const models::Flux2Transformer dit =
      o.random_weights
          ? models::Flux2Transformer(
                release,
                quantize_if(o,
                            models::flux2_dit_random_weights(
                                release, weight_dtype(o), 1,
                                o.fp8 || o.int8 || o.offload ? Device::CPU : at.device),
                            at.device),
                at)
          : models::load_flux2_transformer(o.weights_path, {}, quantization(o), at);
  const auto& c = dit.config();
  announce("flux.2 transformer", c.summary(), o, t0);
  const int64_t rows = o.height / 16, cols = o.width / 16;
  Generator noise(0);
  const Tensor x = noise.randn({o.batch, rows * cols, c.in_channels});
  const Tensor txt = noise.randn({o.batch, text_tokens, c.joint_attention_dim});
  const auto ids = models::flux2_image_ids(rows, cols);
  const std::vector<float> t(static_cast<size_t>(o.batch), 0.5f);
  const std::vector<float> guidance(c.guidance_embeds ? static_cast<size_t>(o.batch) : 0, 4.0f);
  // --references: N pictures of the output's size, joined to every forward as klein and dev edit,
  // or (--kv) run once into klein KV's cache (timed on its own) that every forward reads.
  const int64_t n_img = rows * cols, n_ref = o.references * n_img;
  Tensor x_in = x;
  std::vector<models::Flux2Position> all_ids = ids;
  std::optional<models::Flux2ReferenceCache> cache;
  if (n_ref > 0) {
    const Tensor refs = noise.randn({o.batch, n_ref, c.in_channels});
    std::vector<models::Flux2Position> ref_ids;
    for (int n = 0; n < o.references; ++n) {
      const auto grid = models::flux2_image_ids(rows, cols, 10.0f + 10.0f * static_cast<float>(n));
      ref_ids.insert(ref_ids.end(), grid.begin(), grid.end());
    }
    if (o.kv) {
      timed(o, "dit-reference-cache", fmt::format("{} reference tokens, batch {}", n_ref, o.batch),
            at, o.batch * models::flux2_dit_forward_flops(c, n_ref, 0),
            [&] { cache = dit.reference_cache(refs, ref_ids, 0.0f, guidance); });
    } else {
      x_in = ops::concat({x, refs}, 1);
      all_ids.insert(all_ids.end(), ref_ids.begin(), ref_ids.end());
    }
  }
  Tensor out;
  const std::string refs_note =
      n_ref == 0 ? "" : fmt::format(", {} reference tokens{}", n_ref, o.kv ? " cached" : "");
  timed(o, "dit",
        fmt::format("forward {}x{} batch {}, {} text tokens{}", o.width, o.height, o.batch,
                    text_tokens, refs_note),
        at,
        o.batch * models::flux2_dit_forward_flops(c, cache ? n_img : n_img + n_ref, text_tokens,
                                                  cache ? n_ref : 0),
        [&] {
          out = dit.forward(x_in, all_ids, txt, t, guidance, cache ? &*cache : nullptr)
                    .slice(1, 0, n_img);
        });
  if (!o.reference.empty()) {
    const Tensor want = models::load_flux2_transformer(o.reference, {}, {}, at)
                            .forward(x_in, all_ids, txt, t, guidance, cache ? &*cache : nullptr)
                            .slice(1, 0, n_img);
    fmt::print("relative error against {}: {:.3e}\n", o.reference, relative_error(out, want));
  }
  return 0;
}

int run_dit(const DitOptions& o) {
  const models::Placement at = prepare(o, "--diffusion-model");
  check_size(o.width, o.height);
  ZF_CHECK(o.caption_tokens.value_or(1) >= 1, "[bench] --caption-tokens must be at least 1");
  ZF_CHECK(o.reference.empty() || !o.random_weights,
           "[bench] --reference compares two files: give --diffusion-model too");
  ZF_CHECK(o.loras.empty() || o.model == "zimage", "[bench] --lora: only with --model zimage");
  ZF_CHECK(o.references >= 0 && (o.references == 0 || o.model.starts_with("flux2")),
           "[bench] --references: only with a FLUX.2 model, and not negative");
  ZF_CHECK(!o.kv || o.references > 0, "[bench] --kv caches reference images: give --references");
  ZF_CHECK(o.controlnet.empty() || o.model == "zimage" || o.model == "flux1",
           "[bench] --controlnet: only with --model zimage or flux1");
  if (o.model == "flux1") return run_flux_dit(o, at);
  if (o.model.starts_with("flux2")) return run_flux2_dit(o, at);
  const int64_t caption_tokens = o.caption_tokens.value_or(128);
  const auto t0 = std::chrono::steady_clock::now();
  models::ZImageDiTConfig release;
  if (o.layers > 0) release.n_layers = o.layers;
  ZF_CHECK(o.layers == 0 || o.random_weights, "[bench] --layers only applies to --random-weights");
  std::vector<models::LoraFile> loras;
  for (const std::string& l : o.loras) loras.push_back(models::parse_lora_argument(l));
  // --fp8 quantises host weights, which the model then uploads once; --offload copies host
  // weights into pinned memory; LoRAs are merged on the host.
  const bool on_host = o.fp8 || o.int8 || o.offload || !loras.empty();
  const models::ZImageTransformer dit =
      o.random_weights
          ? models::load_zimage_transformer(
                quantize_if(o,
                            models::zimage_dit_random_weights(release, weight_dtype(o), 1,
                                                              on_host ? Device::CPU : at.device),
                            at.device),
                release, at, loras)
          : models::load_zimage_transformer(o.weights_path, std::nullopt, at, quantization(o),
                                            loras);
  const auto& c = dit.config();
  announce("z-image transformer", c.summary(), o, t0);
  Generator noise(0);
  const Tensor latents = noise.randn({o.batch, c.in_channels, o.height / 8, o.width / 8});
  std::vector<Tensor> captions;
  for (int b = 0; b < o.batch; ++b)
    captions.push_back(noise.randn({caption_tokens, c.cap_feat_dim}));
  const std::vector<float> t(static_cast<size_t>(o.batch), 0.5f);
  const int64_t image_tokens = (o.height / 16) * (o.width / 16);
  const std::optional<models::ZImageControlNet> controlnet = bench_controlnet(o, c, at);
  std::optional<models::ZImageControl> control;
  double flops = models::zimage_dit_forward_flops(c, image_tokens, caption_tokens);
  if (controlnet) {
    control = models::ZImageControl{
        &*controlnet,
        noise.randn({1, controlnet->config().control_in_dim, o.height / 8, o.width / 8}), 0.75f};
    flops += models::zimage_controlnet_forward_flops(controlnet->config(), c, image_tokens,
                                                     caption_tokens);
    fmt::print("controlnet: {}\n", controlnet->config().summary());
  }
  Tensor out;
  timed(o, "dit",
        fmt::format("forward {}x{} batch {}, {} caption tokens{}", o.width, o.height, o.batch,
                    caption_tokens, controlnet ? ", with a ControlNet" : ""),
        at, o.batch * flops,
        [&] { out = dit.forward(latents, t, captions, control ? &*control : nullptr); });
  if (!o.reference.empty()) {
    // The same inputs through the reference weights (e.g. the bf16 file a GGUF was converted
    // from): how far quantisation moves the output.
    const Tensor want = models::load_zimage_transformer(o.reference, std::nullopt, at)
                            .forward(latents, t, captions);
    fmt::print("relative error against {}: {:.3e}\n", o.reference, relative_error(out, want));
  }
  return 0;
}

struct TextEncoderOptions : Common {
  int64_t tokens = 128;
  int layers = 0;
};

int run_text_encoder(const TextEncoderOptions& o) {
  const models::Placement at = prepare(o, "--text-encoder");
  ZF_CHECK(o.tokens >= 1, "[bench] --tokens must be at least 1");
  const auto t0 = std::chrono::steady_clock::now();
  models::Qwen3Config release;
  if (o.layers > 0) release.num_hidden_layers = o.layers + 1;  // hidden_states[-2]: one unused
  ZF_CHECK(o.layers == 0 || o.random_weights, "[bench] --layers only applies to --random-weights");
  const models::Qwen3TextEncoder encoder =
      o.random_weights ? models::Qwen3TextEncoder(
                             release,
                             models::qwen3_random_weights(release, weight_dtype(o), 1,
                                                          o.offload ? Device::CPU : at.device),
                             at)
                       : models::load_qwen3_text_encoder(o.weights_path, std::nullopt, at);
  const auto& c = encoder.config();
  announce("qwen3 text encoder", c.summary(), o, t0);
  std::vector<int32_t> ids(static_cast<size_t>(o.tokens));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919) % 150000);
  timed(o, "text-encoder", fmt::format("encode {} tokens", o.tokens), at,
        models::qwen3_encode_flops(c, o.tokens), [&] { encoder.encode(ids); });
  return 0;
}

struct PipelineOptions : Common {
  std::string tokenizer;
  int64_t width = 1024, height = 1024;
  int batch = 1;
  int steps = 8;
  int layers = 0;
};

// Z-Image-Turbo end to end as `generate` runs it: prompt encoding, the denoising steps without
// CFG, the VAE decode and the 8-bit images (issue 4's 0.8 s target at 1024^2).
int run_pipeline(const PipelineOptions& o) {
  const models::Placement at = prepare(o, "-m");
  check_size(o.width, o.height);
  ZF_CHECK(o.layers == 0 || o.random_weights, "[bench] --layers only applies to --random-weights");
  const auto t0 = std::chrono::steady_clock::now();
  auto random_pipeline = [&] {
    ZF_CHECK(!o.tokenizer.empty(),
             "[bench] pipeline --random-weights needs --tokenizer (the Qwen3 tokenizer.json or "
             "its folder)");
    models::Qwen3Config qwen;
    models::ZImageDiTConfig dit;
    if (o.layers > 0) {
      qwen.num_hidden_layers = o.layers + 1;  // hidden_states[-2]: one unused
      dit.n_layers = o.layers;
    }
    const models::AutoencoderKLConfig vae;
    const Device host_first = o.fp8 || o.int8 || o.offload ? Device::CPU : at.device;
    return pipeline::ZImagePipeline::assemble(
        text::load_bpe_tokenizer(o.tokenizer),
        models::Qwen3TextEncoder(
            qwen, models::qwen3_random_weights(qwen, weight_dtype(o), 1, host_first), at),
        models::ZImageTransformer(
            dit,
            quantize_if(o, models::zimage_dit_random_weights(dit, weight_dtype(o), 1, host_first),
                        at.device),
            at),
        models::AutoencoderKL(
            vae, models::autoencoder_kl_random_weights(vae, weight_dtype(o), 1, at.device), at),
        pipeline::ZImageVariant::Turbo, "random");
  };
  const pipeline::ZImagePipeline pipe =
      o.random_weights ? random_pipeline()
                       : pipeline::ZImagePipeline::load({.model_dir = o.weights_path,
                                                         .tokenizer = o.tokenizer,
                                                         .quantize = quantization(o)},
                                                        at);
  announce("z-image pipeline", pipe.model_name(), o, t0);
  pipeline::ZImageRequest request;
  request.prompt = "a red fox standing in fresh snow at dawn, photograph";
  request.width = static_cast<int>(o.width);
  request.height = static_cast<int>(o.height);
  request.steps = o.steps;
  request.guidance = 0.0f;  // Turbo: no CFG
  request.batch = o.batch;
  timed(o, "pipeline",
        fmt::format("turbo {}x{} batch {}, {} steps", o.width, o.height, o.batch, o.steps), at, 0,
        [&] { pipe.generate(request); });
  return 0;
}

}  // namespace

Run add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "time model components at full size");
  cmd->require_subcommand(1);

  auto* vae = cmd->add_subcommand("vae", "the FLUX.1 / Z-Image autoencoder: decode (and encode)");
  auto vo = std::make_shared<VaeOptions>();
  add_common_options(vae, *vo, "--vae", "an autoencoder file or diffusers vae/ folder");
  vae->add_option("-W,--width", vo->width, "image width in pixels")->capture_default_str();
  vae->add_option("-H,--height", vo->height, "image height in pixels")->capture_default_str();
  vae->add_option("-b,--batch", vo->batch, "images per call")->check(CLI::PositiveNumber);
  vae->add_flag("--encode", vo->encode, "also time encoding the decoded image");

  auto* dit = cmd->add_subcommand("dit", "a diffusion transformer: one denoising forward");
  auto dopt = std::make_shared<DitOptions>();
  add_common_options(dit, *dopt, "--diffusion-model", "a transformer file or folder");
  dit->add_option("--model", dopt->model,
                  "which architecture: zimage, flux1 (FLUX.1-dev), flux2-klein (FLUX.2 klein 4B), "
                  "flux2-klein-9b or flux2-dev")
      ->check(CLI::IsMember({"zimage", "flux1", "flux2-klein", "flux2-klein-9b", "flux2-dev"}))
      ->capture_default_str();
  dit->add_option("-W,--width", dopt->width, "image width in pixels")->capture_default_str();
  dit->add_option("-H,--height", dopt->height, "image height in pixels")->capture_default_str();
  dit->add_option("-b,--batch", dopt->batch, "images per forward")->check(CLI::PositiveNumber);
  dit->add_option("--caption-tokens", dopt->caption_tokens,
                  "caption length (default: Z-Image 128, FLUX 512 text tokens)");
  dit->add_option("--layers", dopt->layers,
                  "main layers (random weights; default: the release's: Z-Image 30, FLUX.1 19 "
                  "double-stream, with twice as many single-stream; FLUX.2 the release's "
                  "double-stream, single-stream in the release's ratio)");
  dit->add_option("--lora", dopt->loras,
                  "a LoRA FILE[:SCALE] merged into the Z-Image transformer at load (repeatable)");
  dit->add_option("--controlnet", dopt->controlnet,
                  "also run a ControlNet: Z-Image's union-1.0 or union-2.1, FLUX.1's union-pro "
                  "or union-pro-2 (the released layouts with random weights), or a ControlNet "
                  "file");
  dit->add_option("--reference", dopt->reference,
                  "another file of the same Z-Image transformer (e.g. the bf16 one a GGUF came "
                  "from): also run it on the same inputs and print the output's relative error");
  dit->add_option("--references", dopt->references,
                  "FLUX.2: this many reference images of the output's size join every forward, "
                  "as editing runs them");
  dit->add_flag("--kv", dopt->kv,
                "FLUX.2 with --references: run them once into klein KV's key/value cache (timed "
                "apart), which every timed forward reads");

  auto* te = cmd->add_subcommand("text-encoder", "the Qwen3 text encoder Z-Image uses");
  auto to = std::make_shared<TextEncoderOptions>();
  add_common_options(te, *to, "--text-encoder", "a Qwen3 file or text_encoder/ folder");
  te->add_option("--tokens", to->tokens, "prompt length in tokens")->capture_default_str();
  te->add_option("--layers", to->layers,
                 "encoder layers (random weights; default: the release's 35)");

  auto* pl = cmd->add_subcommand("pipeline",
                                 "Z-Image-Turbo end to end: encode, denoise without CFG, decode");
  auto po = std::make_shared<PipelineOptions>();
  add_common_options(pl, *po, "-m,--model-dir", "a diffusers Z-Image folder");
  pl->add_option("--tokenizer", po->tokenizer,
                 "the Qwen3 tokenizer.json or its folder (needed with --random-weights)");
  pl->add_option("-W,--width", po->width, "image width in pixels")->capture_default_str();
  pl->add_option("-H,--height", po->height, "image height in pixels")->capture_default_str();
  pl->add_option("-b,--batch", po->batch, "images per run")->check(CLI::PositiveNumber);
  pl->add_option("--steps", po->steps, "denoising steps")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  pl->add_option("--layers", po->layers,
                 "transformer and text-encoder layers (random weights; default: the release's)");

  auto* up = cmd->add_subcommand(
      "upscale",
      "an upscaler (RealESRGAN_x4plus's or realesr-general-x4v3's architecture, or a "
      "file) on one picture, tiled");
  auto uo = std::make_shared<UpscaleOptions>();
  add_common_options(up, *uo, "--upscale-model",
                     "an upscaler model file (ESRGAN, Compact or SPAN)");
  up->add_option("--architecture", uo->architecture,
                 "with --random-weights: esrgan (RealESRGAN_x4plus), compact "
                 "(realesr-general-x4v3) or span (4x-ClearRealityV1's 48 features)")
      ->check(CLI::IsMember({"esrgan", "compact", "span"}))
      ->capture_default_str();
  up->add_option("-W,--width", uo->width, "input width in pixels")->capture_default_str();
  up->add_option("-H,--height", uo->height, "input height in pixels")->capture_default_str();

  return [=] {
    if (vae->parsed()) return run_vae(*vo);
    if (up->parsed()) return run_upscale(*uo);
    if (dit->parsed()) return run_dit(*dopt);
    if (pl->parsed()) return run_pipeline(*po);
    return run_text_encoder(*to);
  };
}

}  // namespace zflow::cli
