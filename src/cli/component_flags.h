// The flags that name a model's component files one by one (stable-diffusion.cpp's names plus the
// tokenizers), shared by `zflow generate` and `zflow serve`.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "pipeline/generator.h"

namespace zflow::cli {

struct ComponentFlags {
  std::string diffusion_model, text_encoder, tokenizer, clip_l, t5xxl, clip_tokenizer, t5_tokenizer,
      vae;
  bool fp8 = false;

  // The files, with `model_dir` as the folder the unnamed components come from (may be empty).
  pipeline::ModelFiles files(const std::string& model_dir = {}) const;
};

// Adds --diffusion-model, --text-encoder, --tokenizer, --clip-l, --t5xxl, --clip-tokenizer,
// --t5-tokenizer and --vae; `note` ends every help line (e.g. " (overrides -m's)"). And --fp8.
void add_component_flags(CLI::App* cmd, ComponentFlags& flags, const std::string& note);

}  // namespace zflow::cli
