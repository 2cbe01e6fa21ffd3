#include "cli/component_flags.h"

namespace zflow::cli {

pipeline::ModelFiles ComponentFlags::files(const std::string& model_dir) const {
  return {.model_dir = model_dir,
          .diffusion_model = diffusion_model,
          .text_encoder = text_encoder,
          .tokenizer = tokenizer,
          .clip_l = clip_l,
          .t5xxl = t5xxl,
          .clip_tokenizer = clip_tokenizer,
          .t5_tokenizer = t5_tokenizer,
          .vae = vae,
          .fp8 = fp8};
}

void add_component_flags(CLI::App* cmd, ComponentFlags& f, const std::string& note) {
  cmd->add_option("--diffusion-model", f.diffusion_model,
                  "the transformer: a .safetensors or .gguf file or a folder" + note);
  cmd->add_option("--text-encoder", f.text_encoder, "the Qwen3 text encoder (Z-Image)" + note);
  cmd->add_option("--tokenizer", f.tokenizer,
                  "the Qwen3 tokenizer.json or its folder (Z-Image)" + note);
  cmd->add_option("--clip-l", f.clip_l, "the CLIP-L text encoder (FLUX.1)" + note);
  cmd->add_option("--t5xxl", f.t5xxl, "the T5-XXL text encoder (FLUX.1)" + note);
  cmd->add_option("--clip-tokenizer", f.clip_tokenizer,
                  "the CLIP tokenizer folder: vocab.json + merges.txt (FLUX.1)" + note);
  cmd->add_option("--t5-tokenizer", f.t5_tokenizer,
                  "the T5 spiece.model or its folder (FLUX.1)" + note);
  cmd->add_option("--vae", f.vae, "the VAE" + note);
  cmd->add_flag("--fp8", f.fp8,
                "quantise the transformer's block linears to scaled float8 e4m3 at load (half "
                "the memory of bf16; embedders, modulation, norms and the final layer keep "
                "their dtype)");
}

}  // namespace zflow::cli
