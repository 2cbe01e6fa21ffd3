// Z-Image's ControlNet, "Z-Image-Turbo-Fun-Controlnet-Union" (alibaba-pai / VideoX-Fun): a
// second, partial transformer fed with the VAE latent of a control image (edges, depth, pose,
// ...) whose blocks return hints the main transformer adds after some of its layers. It owns
// only the control weights; the embedders, refiners and pad tokens are the main model's.
//   control_all_x_embedder.2-1   patch features (4 x control_in_dim) -> dim
//   control_layers.{n}           Z-Image blocks with after_proj (and before_proj on n = 0)
//   control_noise_refiner.{j}    plain Z-Image blocks (1.0) or blocks like control_layers (2.1)
// Files: the released single files (VideoX-Fun = diffusers names, no config), or a diffusers
// ZImageControlNetModel folder. The forward is in ZImageTransformer::forward (zimage_dit.h),
// which runs these blocks as its own; the math: /work/shared/facts/zimage.md section 6.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "io/weight_store.h"
#include "models/placement.h"
#include "models/zimage_dit.h"

namespace zflow::models {

// How the control stream is refined before it joins the captions, by file generation:
enum class ZImageControlRefiner {
  Plain,          // 1.0: two plain modulated blocks, no hints
  ControlLayers,  // 2.0: the control_layers themselves run first, their hints go to the main
                  // noise refiner (the release's "typo"; its control_noise_refiner is untrained)
  ControlBlocks,  // 2.1 and lite: control_noise_refiner blocks with hints for the noise refiner
};
const char* zimage_control_refiner_name(ZImageControlRefiner refiner);

struct ZImageControlNetConfig {
  int64_t control_in_dim = 16;  // 16 (control latent) or 33 (+ 1 - mask + masked-image latent)
  std::vector<int> control_layers_places;          // main layer after which hint n is added
  std::vector<int> control_refiner_layers_places;  // noise-refiner layer of refiner hint j
  ZImageControlRefiner refiner = ZImageControlRefiner::Plain;
  int n_refiner_layers = 2;  // control_noise_refiner blocks (Plain and ControlBlocks)

  // From a diffusers ZImageControlNetModel config.json; dim, heads and eps must agree with the
  // main model's (an error naming the field otherwise).
  static ZImageControlNetConfig from_json(const std::string& json_text, const std::string& source,
                                          const ZImageDiTConfig& main);
  // From the weights of a released single file, which carry no config (facts section 6.1):
  //   control_in_dim: control_all_x_embedder.2-1.weight columns / 4
  //   places: the n control_layers every main.n_layers / n layers from 0 (6 -> 0, 5, .., 25;
  //     15 -> 0, 2, .., 28; 3 -> 0, 10, 20, as VideoX-Fun's configs and ComfyUI have them)
  //   refiner: control_noise_refiner without after_proj -> Plain; none, or its before_proj
  //     absent or all zero -> ControlLayers (the 2.0 file); else ControlBlocks
  //   refiner places: 0, 1, .. for every main noise-refiner layer the chain can feed
  static ZImageControlNetConfig infer_from_weights(const io::WeightStore& weights,
                                                   const ZImageDiTConfig& main);
  // The released Union 1.0 (Plain: 6 control layers, 16 channels) or 2.1 (ControlBlocks: 15
  // control layers, 33 channels) for `main`, its layers placed by the rule above (at most one
  // per main layer when `main` has fewer layers than the release), for speed measurements.
  static ZImageControlNetConfig union_release(ZImageControlRefiner generation,
                                              const ZImageDiTConfig& main);
  std::string summary() const;
};

class ZImageControlNet {
 public:
  struct ControlBlock {
    ZImageTransformer::Block block;
    std::optional<ZImageTransformer::Linear> before_proj;  // block 0 of a chain only
    ZImageTransformer::Linear after_proj;                  // its output -> the hint
  };

  // Binds every parameter by its diffusers name (an error names a missing or misshapen one)
  // and places the weights where `placement` says, always resident (not streamed by --offload).
  ZImageControlNet(const ZImageControlNetConfig& config, const ZImageDiTConfig& main,
                   const io::WeightStore& weights, const Placement& placement = {});

  const ZImageControlNetConfig& config() const { return config_; }
  const ZImageTransformer::Linear& x_embedder() const { return x_embedder_; }
  const std::vector<ControlBlock>& control_layers() const { return control_layers_; }
  // ControlBlocks: the control refiner chain; Plain: its blocks with no projections.
  const std::vector<ControlBlock>& refiner() const { return refiner_; }

 private:
  ZImageControlNetConfig config_;
  ZImageTransformer::Linear x_embedder_;
  std::vector<ControlBlock> control_layers_, refiner_;
};

// Every parameter of the ControlNet for `config` and `main`, in diffusers' state-dict order.
std::vector<ParameterSpec> zimage_controlnet_parameters(const ZImageControlNetConfig& config,
                                                        const ZImageDiTConfig& main);
// Floating-point operations of the ControlNet's blocks in one forward for one sample (as
// zimage_dit_forward_flops counts them): the control layers over the unified sequence, the
// refiner chain (or plain refiner blocks) over the image tokens, their projections.
double zimage_controlnet_forward_flops(const ZImageControlNetConfig& config,
                                       const ZImageDiTConfig& main, int64_t image_tokens,
                                       int64_t caption_tokens);

// Opens a ControlNet file or diffusers folder for a main model with config `main`.
ZImageControlNet load_zimage_controlnet(const std::filesystem::path& path,
                                        const ZImageDiTConfig& main,
                                        const Placement& placement = {});

}  // namespace zflow::models
