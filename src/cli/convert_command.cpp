// `zflow convert`: a model component (safetensors file or diffusers folder) to a GGUF file with
// quantised matrices, by the per-tensor rules of io/gguf_convert.h. A ComfyUI single file's
// `model.diffusion_model.` prefix is dropped, so the result has the layout ComfyUI-GGUF publishes.
#include <fmt/format.h>

#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "io/gguf_convert.h"
#include "io/weight_store.h"
#include "models/detect.h"

namespace zflow::cli {

namespace {

struct ConvertOptions {
  std::string input, output, type = "q8_0";
};

DType target_type(const std::string& name) {
  if (name == "q8_0") return DType::Q8_0;
  if (name == "q4_0") return DType::Q4_0;
  if (name == "q4_k") return DType::Q4_K;
  if (name == "q5_k") return DType::Q5_K;
  if (name == "q6_k") return DType::Q6_K;
  fail("[convert] --type {}: expected q8_0, q4_0, q4_k, q5_k or q6_k", name);
}

// general.architecture as the published GGUFs name it (ComfyUI-GGUF calls Z-Image "lumina2",
// the family it descends from, and both FLUX generations "flux": its loader tells them apart by
// their tensors).
std::string gguf_architecture(const std::string& detected) {
  if (detected == "z-image transformer" || detected == "z-image omni transformer") return "lumina2";
  if (detected.rfind("flux.1", 0) == 0 || detected.rfind("flux.2", 0) == 0) return "flux";
  if (detected == "qwen3 text encoder") return "qwen3";
  return "";
}

int run_convert(const ConvertOptions& o) {
  const DType target = target_type(o.type);
  if (std::filesystem::path(o.output).extension() != ".gguf")
    fail("[convert] -o {}: the output must be a .gguf file", o.output);
  io::WeightStore weights = io::WeightStore::open(o.input);
  for (const std::string& name : weights.names())
    if (name.starts_with("model.diffusion_model.")) {
      weights = weights.with_prefix_removed("model.diffusion_model.");
      break;
    }
  const auto found = models::detect_component(weights);
  const std::string arch = found ? gguf_architecture(found->architecture) : "";
  if (arch.empty())
    fail(
        "[convert] {}: holds {}; zflow converts Z-Image, FLUX.1 and FLUX.2 transformers and "
        "Qwen3 text encoders",
        o.input, found ? found->architecture : "no model zflow knows");
  fmt::print("converting {} ({}) to {} as {}\n", o.input, found->architecture, o.output, o.type);
  std::fflush(stdout);
  io::convert_to_gguf(weights, o.output, {.target = target, .architecture = arch});
  fmt::print("wrote {} ({:.2f} GB)\n", o.output,
             std::filesystem::file_size(o.output) / double(1ull << 30));
  return 0;
}

}  // namespace

Run add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("convert", "quantise a model component to a GGUF file");
  auto o = std::make_shared<ConvertOptions>();
  cmd->add_option("input", o->input, "a .safetensors file or diffusers component folder")
      ->required();
  cmd->add_option("-o,--output", o->output, "the .gguf file to write")->required();
  cmd->add_option("--type", o->type,
                  "matrix type: q8_0, q4_0, q4_k, q5_k or q6_k (norms, embedders and modulation "
                  "keep their float type)")
      ->capture_default_str();
  return [o] { return run_convert(*o); };
}

}  // namespace zflow::cli
