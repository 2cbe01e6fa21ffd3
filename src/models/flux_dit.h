// The FLUX.1 transformer (dev and schnell; diffusers FluxTransformer2DModel), built to
// diffusers' module tree so weights bind by their diffusers names:
//   x_embedder, context_embedder, time_text_embed.{timestep,guidance,text}_embedder.linear_{1,2}
//   transformer_blocks.{i}: norm1.linear, norm1_context.linear, attn.{to_q, to_k, to_v,
//     add_{q,k,v}_proj, norm_q, norm_k, norm_added_q, norm_added_k, to_out.0, to_add_out},
//     ff.net.{0.proj, 2}, ff_context.net.{0.proj, 2}
//   single_transformer_blocks.{i}: norm.linear, attn.{to_q, to_k, to_v, norm_q, norm_k},
//     proj_mlp, proj_out
//   norm_out.linear (chunked (scale, shift)), proj_out
// Reference: diffusers 0.42.1 models/transformers/transformer_flux.py; the step-by-step math is
// /work/shared/facts/flux.md section 1.2. Original BFL and ComfyUI single files are renamed by
// io/key_map_flux.h before binding. On the CPU weights stay in their stored dtype and activations
// are float32; on the GPU (models/placement.h) both are bf16 by default.
#pragma once

#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/key_map_flux.h"
#include "io/load_quantization.h"
#include "io/weight_store.h"
#include "models/first_block_cache.h"
#include "models/flux_rope.h"
#include "models/lora.h"
#include "models/offload.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are the FLUX.1-dev release (black-forest-labs/FLUX.1-dev transformer/config.json);
// schnell differs only in guidance_embeds.
struct FluxDiTConfig {
  int64_t in_channels = 64;   // 16 latent channels packed 2x2
  int64_t out_channels = 64;  // config null -> in_channels
  int num_layers = 19;        // double-stream blocks
  int num_single_layers = 38;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 24;
  int64_t joint_attention_dim = 4096;                  // T5-XXL d_model
  int64_t pooled_projection_dim = 768;                 // CLIP-L pooled output
  bool guidance_embeds = true;                         // dev: true, schnell: false
  std::vector<int64_t> axes_dims_rope = {16, 56, 56};  // sums to the head dim
  double rope_theta = 10000.0;                         // fixed in diffusers' FluxPosEmbed
  // norm_out and proj_out; a ControlNet's trunk (flux_controlnet.h) has neither.
  bool final_layer = true;

  static FluxDiTConfig schnell();  // the release with guidance_embeds false

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t mlp_hidden_dim() const { return inner_dim() * 4; }  // int(dim * mlp_ratio 4.0)

  // From a diffusers transformer/config.json; absent fields keep the defaults above, except
  // guidance_embeds, whose diffusers default is false. Errors name `source` and the field.
  static FluxDiTConfig from_json(const std::string& json_text, const std::string& source);
  static FluxDiTConfig from_json_file(const std::filesystem::path& path);

  // From the shapes of diffusers-named weights, for files without a config: what FluxShapes
  // (below) reads, and pooled_projection_dim: text_embedder.linear_1 columns; axes_dims_rope is
  // the release's [16, 56, 56]. Logs one line with what it found.
  static FluxDiTConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // one line for logs
};

// What the shapes of a FLUX transformer's diffusers-named weights tell, the same in both
// generations (their infer_from_weights start here):
//   inner dim / in_channels: x_embedder.weight rows / columns; out_channels: proj_out rows
//     (in_channels when there is no proj_out: a ControlNet)
//   head dim: the first block's norm_q.weight length (heads = inner dim / head dim), which must
//     be the release's 128: axes_dims_rope is not in the weights (an error says to give the
//     model's config.json)
//   blocks: how many of each kind exist; joint_attention_dim: context_embedder columns
//   guidance_embeds: whether guidance embedder weights exist
struct FluxShapes {
  const io::WeightStore* weights = nullptr;
  std::string tag;  // "flux" / "flux2", for errors
  int64_t inner_dim = 0, in_channels = 0, out_channels = 0, head_dim = 0;
  int64_t joint_attention_dim = 0;
  io::FluxBlockCounts blocks;
  bool guidance_embeds = false;

  static FluxShapes of(const io::WeightStore& weights, std::string tag);
  // Dimension d of tensor `name`; an error naming it when it has too few.
  int64_t dim(const std::string& name, int d) const;
};

// Every parameter of the model for `config`, in diffusers' state-dict order: name and shape.
std::vector<ParameterSpec> flux_dit_parameters(const FluxDiTConfig& config);

// Random weights with the model's names and shapes, for speed measurements, made on `device`.
io::WeightStore flux_dit_random_weights(const FluxDiTConfig& config, DType dtype, uint64_t seed,
                                        Device device = Device::CPU);

// Floating-point operations (2 x multiply-adds) of one forward for one sample with
// `image_tokens` packed image tokens and `text_tokens` T5 tokens: every linear applied per token
// (embedders, q/k/v/out, MLPs, final projection) and the attention matmuls (4 S^2 D per block,
// S = image + text tokens). The per-sample modulation GEMVs are left out. About 74.4 TFLOP for
// 1024x1024 (4096 tokens) with 512 text tokens at the release size.
double flux_dit_forward_flops(const FluxDiTConfig& config, int64_t image_tokens,
                              int64_t text_tokens);

// A token's position (axis 0, row, column) as diffusers passes img_ids / txt_ids (float).
using FluxPosition = std::array<float, 3>;

// The ids of a packed grid of rows x cols image tokens, row-major: (0, row, col).
std::vector<FluxPosition> flux_image_ids(int64_t rows, int64_t cols);

// latents [B, C, H, W] (H, W even) -> tokens [B, (H/2)(W/2), 4C], row-major tokens, features in
// (c, ph, pw) order, c slowest (diffusers _pack_latents).
Tensor flux_pack_latents(const Tensor& latents);
// tokens [B, (H/2)(W/2), 4C] -> [B, C, H, W] (diffusers _unpack_latents).
Tensor flux_unpack_latents(const Tensor& tokens, int64_t height, int64_t width);

class FluxTransformer {
 public:
  // Binds every parameter by its diffusers name; a missing or wrong-shaped tensor gives an error
  // naming it. Then puts the bound weights where `placement` says (placement.h).
  FluxTransformer(const FluxDiTConfig& config, const io::WeightStore& weights,
                  const Placement& placement = {});

  const FluxDiTConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // The velocity [B, N, out_channels] for packed latent tokens x[B, N, in_channels] at positions
  // img_ids (N of them), T5 states txt[B, L, joint_attention_dim] (text ids all zero, as FLUX.1
  // gives them), CLIP pooled outputs pooled[B, pooled_projection_dim], sigmas t[b] in [0, 1]
  // (diffusers' timestep / 1000; the model multiplies by 1000) and, for guidance-distilled
  // models, guidance[b] (the embedded guidance scale; must be empty for schnell). The tensors
  // may be float32 or bfloat16 on any device; the result is float32 on x's device.
  //
  // With `control`, a ControlNet's samples are added to the image tokens after the blocks
  // (diffusers FluxTransformer2DModel.forward): with n samples, double block i gets sample
  // i / ceil(blocks / n), or i % n when `repeat` (XLabs); single block i likewise (never
  // repeated). They must be [B, N, inner] where the activations are (placement().activation).
  struct ControlSamples {
    std::vector<Tensor> double_blocks, single_blocks;
    bool repeat = false;
  };
  // With `cache`, the blocks after the first double block run as first_block_cache.h says, on
  // the image stream (the head is double block 0, the tail the last single block); not with a
  // ControlNet's samples.
  Tensor forward(const Tensor& x, std::span<const FluxPosition> img_ids, const Tensor& txt,
                 const Tensor& pooled, std::span<const float> t,
                 std::span<const float> guidance = {}, const ControlSamples* control = nullptr,
                 FirstBlockCache* cache = nullptr) const;

  // For a ControlNet, whose trunk this is (config().final_layer false): the image tokens
  // [B, N, inner] after every double block, then after every single block, of a forward on the
  // same inputs in which `image_addend` [B, N, inner] is added to the embedded image tokens and
  // `text_prefix` [B, P, inner], when defined, goes before the embedded text (at text position 0,
  // as all FLUX.1 text is). Both where the activations are.
  std::vector<Tensor> block_outputs(const Tensor& x, std::span<const FluxPosition> img_ids,
                                    const Tensor& txt, const Tensor& pooled,
                                    std::span<const float> t, std::span<const float> guidance,
                                    const Tensor& image_addend, const Tensor& text_prefix) const;

  struct Linear {
    Tensor weight, bias;
  };
  struct Mlp {  // Linear -> activation -> Linear
    Linear first, second;
  };
  struct Stream {       // one stream of a double block: the image or the text tokens
    Linear modulation;  // dim -> 6 dim: (shift, scale, gate) for attention, then for the MLP
    Linear q, k, v, out;
    Tensor norm_q, norm_k;
    Mlp mlp;
  };
  struct DoubleBlock {
    Stream img, txt;
  };
  struct SingleBlock {
    Linear modulation;  // dim -> 3 dim: (shift, scale, gate)
    Linear q, k, v, proj_mlp, proj_out;
    Tensor norm_q, norm_k;
  };

 private:
  // What the blocks leave: the joint sequence [text ; image] and the conditioning vector.
  struct Trunk {
    Tensor joint;
    int64_t text_tokens;
    Tensor vec;
  };
  // Called after every block with whether it is a single one, its index, and the image tokens
  // (of a single block: the image part of the joint sequence); a defined result replaces them.
  using AfterBlock = std::function<Tensor(bool single, size_t index, const Tensor& image)>;
  Trunk run(const Tensor& x, std::span<const FluxPosition> img_ids, const Tensor& txt,
            const Tensor& pooled, std::span<const float> t, std::span<const float> guidance,
            const Tensor& image_addend, const Tensor& text_prefix, const AfterBlock& after_block,
            FirstBlockCache* cache = nullptr) const;
  Tensor conditioning(const Tensor& pooled, std::span<const float> t,
                      std::span<const float> guidance) const;
  Tensor heads(const Tensor& projected, const Tensor& norm) const;
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, const RopeTables& rope) const;
  void double_block(const DoubleBlock& b, Tensor& img, Tensor& txt, const Tensor& vec,
                    const RopeTables& rope) const;
  void single_block(const SingleBlock& b, Tensor& x, const Tensor& vec,
                    const RopeTables& rope) const;

  FluxDiTConfig config_;
  Placement placement_;
  Linear x_embedder_, context_embedder_, norm_out_, proj_out_;
  Mlp time_embedder_, guidance_embedder_, text_embedder_;
  std::vector<DoubleBlock> double_blocks_;
  std::vector<SingleBlock> single_blocks_;
  std::shared_ptr<OffloadedBlocks> offload_;  // --offload: the blocks' weights, streamed
};

// Opens the transformer from a diffusers transformer/ folder (config.json + sharded
// safetensors + index), its *.safetensors.index.json, a model folder holding transformer/, or a
// single file in either layout (diffusers names, or original BFL names with an optional
// `model.diffusion_model.` prefix as ComfyUI writes them). The config is `config` when given,
// else the folder's config.json (folders and index files only), else inferred from the weights.
// dev or schnell: the weights decide (guidance embedder present or not); a config saying
// otherwise is an Error.
// `quantize` (--fp8, --int8) quantises the block linears as they load (io/load_quantization.h).
// The `loras` are merged into the weights before they are bound (models/lora.h).
FluxTransformer load_flux_transformer(const std::filesystem::path& path,
                                      const std::optional<FluxDiTConfig>& config = {},
                                      io::LoadQuantization quantize = {},
                                      const Placement& placement = {},
                                      std::span<const LoraFile> loras = {});
FluxTransformer load_flux_transformer(const io::WeightStore& weights,
                                      const std::optional<FluxDiTConfig>& config = {},
                                      const Placement& placement = {},
                                      std::span<const LoraFile> loras = {});

}  // namespace zflow::models
