// `zflow serve`: the HTTP API server and web page (src/server/), over models named on the command
// line or found in a models folder.
#include <fmt/format.h>
#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>

#include "cli/commands.h"
#include "cli/component_flags.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "server/http_server.h"
#include "server/model_registry.h"
#include "text/wildcard_folder.h"

namespace zflow::cli {

namespace {

struct ServeOptions {
  std::vector<std::string> model_dirs;
  std::string models_folder;
  std::string lora_folder;        // --lora-dir: the LoRAs requests may name
  std::string controlnet_folder;  // --controlnet-dir: the Z-Image ControlNets requests may name
  std::string
      upscaler_folder;  // --upscaler-dir: the upscalers (ESRGAN, Compact, SPAN) requests may name
  ComponentFlags components;  // one model given by its files
  server::ServerOptions server;
  double memory_budget_gb = 0;
  std::optional<int> join_images;  // --join-jobs; unset: by device
  int threads = 0;
  std::string device;            // --device; empty: the default
  std::string matmul_precision;  // --matmul-precision; empty: the default
  bool dynamic_prompts = false;  // --dynamic-prompts: prompts are templates unless a job says
  std::string styles_file;       // --styles: A1111's styles.csv
  std::string wildcards_folder;  // --wildcards
};

std::vector<server::ModelEntry> model_entries(const ServeOptions& o) {
  std::vector<server::ModelEntry> entries;
  // --vae, --tokenizer and the like complete --diffusion-model's model, or else override the
  // files of the one -m folder, as in `zflow generate`; with several folders they would be a guess.
  const bool override_folder =
      o.components.diffusion_model.empty() && o.components.names_other_components();
  ZF_CHECK(!override_folder || (o.model_dirs.size() == 1 && o.models_folder.empty()),
           "[serve] --text-encoder, --tokenizer, --vae and the other component flags name the "
           "files of one model: give them with --diffusion-model, or with exactly one -m DIR (and "
           "no --models-dir)");
  // Models load at their first job; a mistyped path is said now instead.
  for (const auto& [flag, path] : o.components.named_files())
    ZF_CHECK(std::filesystem::exists(path), "[serve] {} {}: no such file or folder", flag, path);
  for (const auto& dir : o.model_dirs)
    entries.push_back(server::model_entry(
        override_folder ? o.components.files(dir) : pipeline::ModelFiles{.model_dir = dir}));
  if (!o.components.diffusion_model.empty())
    entries.push_back(server::model_entry(o.components.files()));
  if (!o.models_folder.empty())
    for (auto& e : server::scan_models_folder(o.models_folder)) entries.push_back(std::move(e));
  if (entries.empty())
    fail("[serve] no models: give -m DIR, --models-dir DIR or --diffusion-model FILE");
  const Device device = resolve_device(o.device);
  const io::LoadQuantization quantize = o.components.files().quantize;
  // Refused now rather than at the first job (io::quantize_at_load says the same).
  ZF_CHECK(quantize != io::LoadQuantization::Int8 || device == Device::CPU,
           "[serve] --int8 makes weights for the CPU's int8 matmuls; on a GPU use --fp8");
  for (auto& e : entries) {
    e.files.device = device;
    e.files.quantize = quantize;  // --fp8 / --int8 hold for every model served
    e.files.offload = o.components.offload;
  }
  return entries;
}

int run_serve(ServeOptions o) {
  if (o.threads > 0) ThreadPool::set_compute_threads(o.threads);
  apply_matmul_precision(o.matmul_precision);
  if (o.dynamic_prompts) o.server.prompt_templates = server::PromptTemplates{};
  if (!o.styles_file.empty()) o.server.styles = text::read_prompt_styles(o.styles_file);
  if (!o.wildcards_folder.empty()) o.server.wildcards = text::wildcard_folder(o.wildcards_folder);
  if (o.server.api_key.empty())
    if (const char* key = std::getenv("ZFLOW_API_KEY")) o.server.api_key = key;
  // A GPU runs a batch of four in far less time than four runs; a CPU does not.
  o.server.max_joined_images =
      o.join_images.value_or(resolve_device(o.device) == Device::CUDA ? 4 : 1);

  // SIGINT / SIGTERM are taken by one thread that stops the server cleanly (cancelling jobs and
  // closing connections); every other thread, started below, inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::ModelRegistry models(
      model_entries(o), static_cast<uint64_t>(o.memory_budget_gb * (1ull << 30)),
      pipeline::load_generator,
      o.lora_folder.empty() ? std::vector<server::LoraEntry>{}
                            : server::scan_weight_folder(o.lora_folder, "LoRA"),
      o.controlnet_folder.empty() ? std::vector<server::LoraEntry>{}
                                  : server::scan_weight_folder(o.controlnet_folder, "ControlNet"));
  if (!o.upscaler_folder.empty())
    models.set_upscalers(server::scan_weight_folder(o.upscaler_folder, "upscaler"),
                         resolve_device(o.device));
  server::ApiServer api(o.server, models);
  const int port = api.bind();
  for (const auto& e : models.entries())
    log::info("[serve] model {} ({:.2f} GB)", e.name, e.bytes / double(1ull << 30));
  fmt::print("zflow serving on http://{}:{}/\n", o.server.host, port);
  std::fflush(stdout);

  std::thread stopper([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    log::info("[serve] signal {}: stopping", sig);
    api.stop();
  });
  api.serve();
  // serve() also returns when the socket fails; wake the stopper so it can be joined.
  pthread_kill(stopper.native_handle(), SIGTERM);
  stopper.join();
  return 0;
}

}  // namespace

Run add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "serve the OpenAI, A1111 and job APIs and a web page");
  auto o = std::make_shared<ServeOptions>();
  cmd->add_option("-m,--model", o->model_dirs, "a diffusers model folder (repeatable)");
  cmd->add_option("--models-dir", o->models_folder,
                  "a folder whose subfolders are diffusers models, offered by folder name");
  add_component_flags(cmd, o->components, " (one model given by its files)");
  cmd->add_option("--lora-dir", o->lora_folder,
                  "a folder of LoRA .safetensors files requests may name (<lora:NAME:SCALE> in an "
                  "A1111 prompt, or \"loras\": [{\"name\", \"scale\"}]); a model with LoRAs is "
                  "loaded as a model of its own");
  cmd->add_option("--controlnet-dir", o->controlnet_folder,
                  "a folder of Z-Image ControlNet .safetensors files requests may name "
                  "(\"controlnet\": NAME with a \"control_image\", or A1111's "
                  "alwayson_scripts.controlnet); a model with a ControlNet is loaded as a model "
                  "of its own");
  cmd->add_option("--upscaler-dir", o->upscaler_folder,
                  "a folder of upscaler files (ESRGAN, Real-ESRGAN Compact, SPAN; .safetensors or "
                  ".pth) requests may name (A1111's "
                  "hr_upscaler and extras upscaler_1, the jobs' hires_upscaler)");
  cmd->add_flag("--dynamic-prompts", o->dynamic_prompts,
                "read every job's prompt and negative prompt as Dynamic Prompts templates in "
                "random mode, image k's drawn from its seed + k, unless the job says otherwise "
                "(as A1111 with the extension installed: A1111 requests turn it off or to "
                "combinatorial in alwayson_scripts, jobs with \"dynamic_prompts\")");
  cmd->add_option("--styles", o->styles_file,
                  "an A1111 styles.csv (name, prompt, negative_prompt) whose styles requests may "
                  "name (A1111's \"styles\": [...]; GET /sdapi/v1/prompt-styles lists them)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--wildcards", o->wildcards_folder,
                  "the folder of wildcard files for __name__ in templates")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--host", o->server.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->server.port, "port (0: any free one)")->capture_default_str();
  cmd->add_option("--api-key", o->server.api_key,
                  "require 'Authorization: Bearer KEY' (default: $ZFLOW_API_KEY, else none)");
  cmd->add_option("--queue", o->server.queue_capacity, "jobs that may wait before 429")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--memory-budget", o->memory_budget_gb,
                  "GB of model weights kept loaded; least recently used models are evicted "
                  "(default: no limit)");
  cmd->add_option("--max-size", o->server.limits.max_side, "largest width or height allowed")
      ->capture_default_str();
  cmd->add_option("--max-batch", o->server.limits.max_batch, "most images per request")
      ->capture_default_str();
  cmd->add_option("--join-jobs", o->join_images,
                  "join waiting jobs that differ only in prompts, seed and image count into one "
                  "batched run of up to N images, each job still getting exactly its own images "
                  "(default: 4 on a GPU, 1 = off on the CPU)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--threads", o->threads, "CPU threads for generation (default: all)");
  add_device_flag(cmd, o->device);
  add_matmul_precision_flag(cmd, o->matmul_precision);
  return [o] { return run_serve(*o); };
}

}  // namespace zflow::cli
