// `zflow convert`: a model component (safetensors file or diffusers folder) to a GGUF file with
// quantised matrices, by the per-tensor rules of io/gguf_convert.h, or to a ComfyUI fp8 or int8
// safetensors file (io/comfy_quant_writer.h). A ComfyUI single file's `model.diffusion_model.`
// prefix is dropped, so a GGUF has the layout ComfyUI-GGUF publishes.
#include <fmt/format.h>

#include <filesystem>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "io/comfy_quant_writer.h"
#include "io/gguf_convert.h"
#include "io/weight_store.h"
#include "models/detect.h"

namespace zflow::cli {

namespace {

struct ConvertOptions {
  std::string input, output, type = "q8_0";
};

// A GGUF block type, or nullopt for the safetensors forms (fp8, int8).
std::optional<DType> gguf_type(const std::string& name) {
  if (name == "q8_0") return DType::Q8_0;
  if (name == "q4_0") return DType::Q4_0;
  if (name == "q4_k") return DType::Q4_K;
  if (name == "q5_k") return DType::Q5_K;
  if (name == "q6_k") return DType::Q6_K;
  if (name == "fp8" || name == "int8") return std::nullopt;
  fail("[convert] --type {}: expected q8_0, q4_0, q4_k, q5_k, q6_k, fp8 or int8", name);
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
  const std::optional<DType> target = gguf_type(o.type);
  const std::string extension = target ? ".gguf" : ".safetensors";
  if (std::filesystem::path(o.output).extension() != extension)
    fail("[convert] -o {}: --type {} writes a {} file", o.output, o.type, extension);
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
  if (target)
    io::convert_to_gguf(weights, o.output, {.target = *target, .architecture = arch});
  else
    io::write_comfy_quantized(
        weights, o.output,
        o.type == "fp8" ? io::LoadQuantization::Fp8 : io::LoadQuantization::Int8);
  fmt::print("wrote {} ({:.2f} GB)\n", o.output,
             std::filesystem::file_size(o.output) / double(1ull << 30));
  return 0;
}

}  // namespace

Run add_convert_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "convert", "quantise a model component to a GGUF file or a ComfyUI fp8 / int8 file");
  auto o = std::make_shared<ConvertOptions>();
  cmd->add_option("input", o->input, "a .safetensors file or diffusers component folder")
      ->required();
  cmd->add_option("-o,--output", o->output,
                  "the file to write: .gguf, or .safetensors for fp8 and int8")
      ->required();
  cmd->add_option("--type", o->type,
                  "matrix type: q8_0, q4_0, q4_k, q5_k or q6_k (GGUF), or fp8 (scaled e4m3) or "
                  "int8 (rows ConvRot-rotated, W8A8 on the CPU) as ComfyUI stores them; norms, "
                  "embedders and modulation keep their float type")
      ->capture_default_str();
  return [o] { return run_convert(*o); };
}

}  // namespace zflow::cli
