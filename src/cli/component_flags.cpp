#include "cli/component_flags.h"

#include <algorithm>
#include <filesystem>

#include "backend/cpu/gemm.h"
#include "backend/device.h"
#include "core/error.h"

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
          .redux = redux,
          .siglip = siglip,
          .quantize = fp8    ? io::LoadQuantization::Fp8
                      : int8 ? io::LoadQuantization::Int8
                             : io::LoadQuantization::None,
          .offload = offload};
}

std::vector<std::pair<std::string, std::string>> ComponentFlags::named_files() const {
  std::vector<std::pair<std::string, std::string>> named;
  for (const auto& [flag, file] : {std::pair{"--diffusion-model", &diffusion_model},
                                   {"--text-encoder", &text_encoder},
                                   {"--tokenizer", &tokenizer},
                                   {"--clip-l", &clip_l},
                                   {"--t5xxl", &t5xxl},
                                   {"--clip-tokenizer", &clip_tokenizer},
                                   {"--t5-tokenizer", &t5_tokenizer},
                                   {"--vae", &vae},
                                   {"--redux", &redux},
                                   {"--siglip", &siglip}})
    if (!file->empty()) named.emplace_back(flag, *file);
  return named;
}

bool ComponentFlags::names_other_components() const {
  const auto named = named_files();
  return std::any_of(named.begin(), named.end(),
                     [](const auto& n) { return n.first != "--diffusion-model"; });
}

void add_component_flags(CLI::App* cmd, ComponentFlags& f, const std::string& note) {
  cmd->add_option("--diffusion-model", f.diffusion_model,
                  "the transformer: a .safetensors or .gguf file or a folder" + note);
  cmd->add_option(
      "--text-encoder", f.text_encoder,
      "the text encoder: Qwen3 (Z-Image, FLUX.2 klein) or Mistral-Small (FLUX.2-dev)" + note);
  cmd->add_option("--tokenizer", f.tokenizer,
                  "the tokenizer.json or its folder: Qwen3's, or Mistral's (FLUX.2-dev: also "
                  "vocab.json + merges.txt)" +
                      note);
  cmd->add_option("--clip-l", f.clip_l, "the CLIP-L text encoder (FLUX.1)" + note);
  cmd->add_option("--t5xxl", f.t5xxl, "the T5-XXL text encoder (FLUX.1)" + note);
  cmd->add_option("--clip-tokenizer", f.clip_tokenizer,
                  "the CLIP tokenizer folder: vocab.json + merges.txt (FLUX.1)" + note);
  cmd->add_option("--t5-tokenizer", f.t5_tokenizer,
                  "the T5 spiece.model or its folder (FLUX.1)" + note);
  cmd->add_option("--vae", f.vae, "the VAE" + note);
  cmd->add_option("--redux", f.redux,
                  "FLUX.1 Redux: the FLUX.1-Redux-dev folder or flux1-redux-dev.safetensors; -r "
                  "then names the picture to make variations of");
  cmd->add_option("--siglip", f.siglip,
                  "the SigLIP vision tower Redux reads pictures with "
                  "(sigclip_vision_patch14_384.safetensors; default: the Redux folder's), or "
                  "Z-Image Omni's SigLIP 2 tower (default: the model folder's siglip/)");
  cmd->add_flag("--fp8", f.fp8,
                "quantise the transformer's block linears to scaled float8 e4m3 at load (half "
                "the memory of bf16; embedders, modulation, norms and the final layer keep "
                "their dtype)");
  cmd->add_flag("--int8", f.int8,
                "quantise the same linears to int8 rows at load, as ComfyUI's int8 files (half the "
                "memory of bf16; on the CPU they run as W8A8 int8 matmuls, faster than bf16 where "
                "it has AVX-512 VNNI; not for a GPU, where --fp8 is the form)")
      ->excludes("--fp8");
  cmd->add_flag("--offload", f.offload,
                "keep the transformer's and the text encoders' blocks in host memory and stream "
                "them to the GPU one block ahead of use (for cards too small for the model; "
                "quantised weights cross the bus quantised)");
}

void add_matmul_precision_flag(CLI::App* cmd, std::string& precision) {
  cmd->add_option("--matmul-precision", precision,
                  "CPU matmuls with bf16, fp8 or GGUF-quantised weights, and attention: bf16 "
                  "rounds activations to bfloat16 (twice as fast where the CPU has AVX-512 BF16, "
                  "as PyTorch computes a bf16 model) or fp32 keeps every product in float32 "
                  "(default: bf16)")
      ->check(CLI::IsMember({"bf16", "fp32"}));
}

void apply_matmul_precision(const std::string& precision) {
  if (precision.empty()) return;
  ZF_CHECK(precision == "bf16" || precision == "fp32",
           "[cpu] --matmul-precision {}: expected bf16 or fp32", precision);
  cpu::set_matmul_precision(precision == "fp32" ? cpu::MatmulPrecision::Float32
                                                : cpu::MatmulPrecision::Bfloat16);
}

void add_device_flag(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device,
                  "where the models run: cuda or cpu (default: cuda when built with CUDA and a GPU "
                  "is present, else cpu)")
      ->check(CLI::IsMember({"cuda", "cpu"}));
}

Device resolve_device(const std::string& device) {
  if (device == "cpu") return Device::CPU;
  const bool gpu = built_with_cuda() && !cuda_devices().empty();
  if (device.empty()) return gpu ? Device::CUDA : Device::CPU;
  ZF_CHECK(device == "cuda", "[device] --device {}: expected cuda or cpu", device);
  ZF_CHECK(built_with_cuda(),
           "[device] --device cuda: this build has no CUDA backend (configure with "
           "-DZFLOW_CUDA=ON, or use --device cpu)");
  ZF_CHECK(gpu, "[device] --device cuda: no CUDA device found on this machine (use --device cpu)");
  return Device::CUDA;
}

std::shared_ptr<const models::Upscaler> load_upscale_model(const std::string& path,
                                                           const std::string& flag, Device device) {
  ZF_CHECK(std::filesystem::is_regular_file(path),
           "[upscale] {} {}: no such file (expected an ESRGAN, Real-ESRGAN Compact or SPAN model: "
           "RealESRGAN_x4plus, 4x-UltraSharp, realesr-general-x4v3, ...: safetensors or .pth)",
           flag, path);
  return models::load_upscaler(path, models::Placement::on(device));
}

}  // namespace zflow::cli
