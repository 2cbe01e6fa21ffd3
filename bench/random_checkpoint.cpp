// Writes full-size random-weight checkpoints in the layouts ComfyUI publishes, so that
// zflow and other programs (stable-diffusion.cpp) can be timed on the same files:
//
//   random_checkpoint zimage-dit OUT.safetensors   z_image_turbo_bf16 (split file, no prefix)
//   random_checkpoint qwen3 OUT.safetensors        qwen_3_4b (all 36 layers, "model." names)
//   random_checkpoint vae OUT.safetensors          FLUX.1 ae.safetensors (BFL names)
//
// Values come from models::random_weights (speed does not depend on them); weights are bf16
// except the VAE's, which the release file keeps in float32.
#include <fmt/format.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/key_map_autoencoder.h"
#include "io/key_map_zimage.h"
#include "io/safetensors.h"
#include "models/autoencoder_kl.h"
#include "models/qwen3.h"
#include "models/zimage_dit.h"

namespace {

using namespace zflow;

io::WeightStore zimage_dit() {
  const models::ZImageDiTConfig config;
  const io::WeightStore named = models::zimage_dit_random_weights(config, DType::BF16, 1);
  return io::diffusers_zimage_to_original(named, io::count_zimage_blocks(named));
}

io::WeightStore qwen3() {
  const models::Qwen3Config config;
  const io::WeightStore named = models::random_weights(
      models::qwen3_parameters(config, config.num_hidden_layers), DType::BF16, 1);
  return named.renamed(
      [](const std::string& name) -> std::optional<std::string> { return "model." + name; });
}

io::WeightStore vae() {
  const models::AutoencoderKLConfig config;
  const io::AutoencoderCounts counts{static_cast<int>(config.block_out_channels.size()),
                                     config.layers_per_block};
  return io::diffusers_autoencoder_to_original(
      models::autoencoder_kl_random_weights(config, DType::F32, 1), counts);
}

int run(const std::string& what, const std::string& out) {
  const std::map<std::string, io::WeightStore (*)()> components = {
      {"zimage-dit", zimage_dit}, {"qwen3", qwen3}, {"vae", vae}};
  const auto it = components.find(what);
  ZF_CHECK(it != components.end(),
           "[random_checkpoint] unknown component '{}': expected zimage-dit, qwen3 or vae", what);
  const io::WeightStore store = it->second();
  std::vector<std::pair<std::string, Tensor>> tensors;
  size_t bytes = 0;
  for (const std::string& name : store.names()) {
    tensors.emplace_back(name, store.get(name));
    bytes += tensors.back().second.nbytes();
  }
  io::write_safetensors(out, tensors, {{"zflow", "random weights for benchmarks"}});
  fmt::print("{}: {} tensors, {:.2f} GB\n", out, tensors.size(), bytes / 1e9);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: random_checkpoint zimage-dit|qwen3|vae OUT.safetensors\n");
    return 2;
  }
  try {
    return run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
