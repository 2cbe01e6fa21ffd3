// FLUX.1 ControlNets (diffusers FluxControlNetModel): InstantX / Shakker-Labs (Union, Union-Pro,
// Canny, Depth, ...) and XLabs. A ControlNet is a shallow copy of the transformer's trunk (same
// embedders and blocks, no final layer) that sees the noisy tokens plus a control; each block's
// image tokens, through a zero-initialised linear and times the conditioning scale, become a
// sample the transformer adds after its own blocks (FluxTransformer::ControlSamples):
//   img = x_embedder(x) + controlnet_x_embedder(control tokens)
//     control tokens: InstantX: the control image's normalised VAE latents, packed 2x2 (64)
//                     XLabs: input_hint_block(control image in [-1, 1]) (8 convolutions, three
//                     of stride 2, SiLU between), patchified patch_size x patch_size (c, ph, pw)
//   Union (num_mode set): controlnet_mode_embedder[mode] is one more text token, first
//   samples = [controlnet_blocks[i](img after double block i)] and
//             [controlnet_single_blocks[i](image part after single block i)], times the scale
// Reference: diffusers 0.42.1 models/controlnets/controlnet_flux.py; facts: flux.md section 6.
// Files: a diffusers folder (config.json + safetensors), its safetensors alone (the config is
// then read from the shapes), or XLabs' own files (BFL names, pos_embed_input, input_hint_block
// as one Sequential with its convolutions at 0, 2, .., 14).
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/flux_dit.h"
#include "models/placement.h"

namespace zflow::models {

struct FluxControlNetConfig {
  FluxDiTConfig trunk;   // final_layer false; in_channels the packed latents' 64
  int64_t num_mode = 0;  // Union: rows of the mode embedder; 0 without one
  // XLabs: input_hint_block's output channels, patchified patch_size^2 to in_channels; 0: the
  // control is packed VAE latents (InstantX).
  int64_t conditioning_embedding_channels = 0;
  int64_t patch_size = 1;

  bool takes_pixels() const { return conditioning_embedding_channels > 0; }

  // From a diffusers FluxControlNetModel config.json; errors name `source` and the field.
  static FluxControlNetConfig from_json(const std::string& json_text, const std::string& source);
  static FluxControlNetConfig from_json_file(const std::filesystem::path& path);
  // From diffusers-named weights (see FluxShapes; num_mode: the mode embedder's rows; the hint
  // block's channels: input_hint_block.conv_out rows).
  static FluxControlNetConfig infer_from_weights(const io::WeightStore& weights);
  // Shakker-Labs' FLUX.1-dev-ControlNet-Union-Pro (5 double + 10 single blocks, 10 modes) and
  // its 2.0 (6 double blocks, no modes), for speed measurements.
  static FluxControlNetConfig union_pro();
  static FluxControlNetConfig union_pro_2();
  std::string summary() const;
};

// Floating-point operations of one ControlNet forward for one sample (as flux_dit_forward_flops
// counts them): its blocks, embedders and the per-block output projections.
double flux_controlnet_forward_flops(const FluxControlNetConfig& config, int64_t image_tokens,
                                     int64_t text_tokens);

// Every parameter of the ControlNet for `config`, in diffusers' state-dict order.
std::vector<ParameterSpec> flux_controlnet_parameters(const FluxControlNetConfig& config);

class FluxControlNet {
 public:
  // Binds every parameter by its diffusers name (an error names a missing or misshapen one) and
  // places the weights where `placement` says, always resident (not streamed by --offload).
  FluxControlNet(const FluxControlNetConfig& config, const io::WeightStore& weights,
                 const Placement& placement = {});

  const FluxControlNetConfig& config() const { return config_; }

  // The samples for the transformer's forward on the same x, ids, texts, t and guidance
  // (FluxTransformer::forward; guidance only when this ControlNet has a guidance embedder):
  // `control` is [B, N, in_channels] packed latents (InstantX) or [B, 3, H, W] pixels in
  // [-1, 1] (XLabs, H and W 8 x patch_size per token side); `mode` is required by a Union
  // ControlNet and refused by others; every sample is multiplied by `scale`.
  FluxTransformer::ControlSamples forward(const Tensor& x, std::span<const FluxPosition> img_ids,
                                          const Tensor& txt, const Tensor& pooled,
                                          std::span<const float> t, std::span<const float> guidance,
                                          const Tensor& control, std::optional<int> mode,
                                          float scale) const;

  using Linear = FluxTransformer::Linear;

 private:
  Tensor control_tokens(const Tensor& control, int64_t tokens) const;

  FluxControlNetConfig config_;
  Placement placement_;
  FluxTransformer trunk_;
  Linear x_embedder_;                            // controlnet_x_embedder
  std::vector<Linear> double_out_, single_out_;  // controlnet_blocks, controlnet_single_blocks
  Tensor mode_embedding_;           // controlnet_mode_embedder.weight [num_mode, inner]
  std::vector<Linear> hint_convs_;  // input_hint_block: conv_in, blocks.0-5, conv_out
};

// Whether `weights` are a FLUX.1 ControlNet's: controlnet_x_embedder (diffusers) or
// pos_embed_input (XLabs).
bool is_flux_controlnet(const io::WeightStore& weights);
// The weights under diffusers' names (XLabs' renamed; others as they are).
io::WeightStore flux_controlnet_diffusers_names(const io::WeightStore& weights);

// Opens a ControlNet folder or file (see above); the config is `config` when given, else the
// folder's config.json when there is one, else inferred from the weights.
FluxControlNet load_flux_controlnet(const std::filesystem::path& path,
                                    const Placement& placement = {},
                                    const std::optional<FluxControlNetConfig>& config = {});

}  // namespace zflow::models
