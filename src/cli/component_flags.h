// The flags that name a model's component files one by one (stable-diffusion.cpp's names plus the
// tokenizers), shared by `zflow generate` and `zflow serve`.
#pragma once

#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/upscaler.h"
#include "pipeline/generator.h"

namespace zflow::cli {

struct ComponentFlags {
  std::string diffusion_model, text_encoder, tokenizer, clip_l, t5xxl, clip_tokenizer, t5_tokenizer,
      vae, redux, siglip;
  bool fp8 = false, int8 = false;
  bool offload = false;

  // The files, with `model_dir` as the folder the unnamed components come from (may be empty).
  pipeline::ModelFiles files(const std::string& model_dir = {}) const;
  // Whether a flag names a component file other than the transformer (--vae, --tokenizer, ...).
  bool names_other_components() const;
  // The files the flags name, each with its flag ("--vae").
  std::vector<std::pair<std::string, std::string>> named_files() const;
};

// Adds --diffusion-model, --text-encoder, --tokenizer, --clip-l, --t5xxl, --clip-tokenizer,
// --t5-tokenizer, --vae, --redux and --siglip; `note` ends every help line (e.g. " (overrides
// -m's)"). And --fp8, --int8 and --offload.
void add_component_flags(CLI::App* cmd, ComponentFlags& flags, const std::string& note);

// --matmul-precision bf16|fp32, shared by generate, serve and bench: whether CPU matmuls with
// bf16, fp8 or GGUF-quantised weights round activations to bfloat16 (vdpbf16ps, twice as fast, on
// processors with AVX-512 BF16) or keep every product in float32.
void add_matmul_precision_flag(CLI::App* cmd, std::string& precision);
// Sets the process's matmul precision from a --matmul-precision value (empty: the default, bf16).
void apply_matmul_precision(const std::string& precision);

// --device cuda|cpu, shared by generate, serve and bench: where the models run.
void add_device_flag(CLI::App* cmd, std::string& device);
// The device a --device value names; empty means the default: cuda when this build has CUDA and
// a GPU is present, else cpu. "cuda" in a CPU-only build or without a GPU is a one-line Error
// naming the flag.
Device resolve_device(const std::string& device);

// The ESRGAN upscaler file a flag names, loaded onto `device`; errors name the flag.
std::shared_ptr<const models::Upscaler> load_upscale_model(const std::string& path,
                                                           const std::string& flag, Device device);

}  // namespace zflow::cli
