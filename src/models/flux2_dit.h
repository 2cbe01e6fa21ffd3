// The FLUX.2 transformer (dev and klein; diffusers Flux2Transformer2DModel), built to diffusers'
// module tree so weights bind by their diffusers names:
//   x_embedder, context_embedder, time_guidance_embed.{timestep,guidance}_embedder.linear_{1,2}
//   double_stream_modulation_{img,txt}.linear, single_stream_modulation.linear
//   transformer_blocks.{i}.attn.{to_q, to_k, to_v, add_{q,k,v}_proj, norm_q, norm_k,
//     norm_added_q, norm_added_k, to_out.0, to_add_out}, ff.linear_{in,out},
//     ff_context.linear_{in,out}
//   single_transformer_blocks.{i}.attn.{to_qkv_mlp_proj, norm_q, norm_k, to_out}
//   norm_out.linear (chunked (scale, shift)), proj_out
// What differs from FLUX.1 (models/flux_dit.h; facts/flux.md section 1.4): no biases anywhere; no
// pooled text vector; one (shift, scale, gate) modulation per stream shared by every block,
// computed once a forward; SwiGLU MLPs; the single blocks' q, k, v and MLP input in one fused
// projection; 4-axis positions (t, h, w, l) with text on the l axis; RoPE theta 2000.
// Reference: diffusers 0.42.1 models/transformers/transformer_flux2.py. Original BFL and
// ComfyUI single files are renamed by io/key_map_flux.h before binding. On the CPU weights stay in
// their stored dtype and activations are float32; on the GPU both are bf16 by default.
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
#include "io/load_quantization.h"
#include "io/weight_store.h"
#include "models/flux_rope.h"
#include "models/lora.h"
#include "models/offload.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are the FLUX.2-dev release (diffusers Flux2Transformer2DModel's defaults);
// klein_4b() and klein_9b() the klein releases (facts/flux.md section 1.3).
struct Flux2DiTConfig {
  int64_t in_channels = 128;   // the AE's 32 latent channels patchified 2x2
  int64_t out_channels = 128;  // config null -> in_channels
  int num_layers = 8;          // double-stream blocks
  int num_single_layers = 48;
  int64_t attention_head_dim = 128;
  int64_t num_attention_heads = 48;
  int64_t joint_attention_dim = 15360;  // 3 stacked hidden states of the text encoder
  int64_t timestep_guidance_channels = 256;
  double mlp_ratio = 3.0;
  std::vector<int64_t> axes_dims_rope = {32, 32, 32, 32};  // sums to the head dim
  double rope_theta = 2000.0;
  double eps = 1e-6;            // every LayerNorm and QK RMSNorm
  bool guidance_embeds = true;  // dev: true, klein: false

  static Flux2DiTConfig klein_4b();  // Qwen3-4B text states (3 x 2560)
  static Flux2DiTConfig klein_9b();  // Qwen3-8B text states (3 x 4096)

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  // int(dim * mlp_ratio), as diffusers truncates it.
  int64_t mlp_hidden_dim() const {
    return static_cast<int64_t>(static_cast<double>(inner_dim()) * mlp_ratio);
  }

  // From a diffusers transformer/config.json; absent fields keep the defaults above. Errors
  // name `source` and the field.
  static Flux2DiTConfig from_json(const std::string& json_text, const std::string& source);
  static Flux2DiTConfig from_json_file(const std::filesystem::path& path);

  // From the shapes of diffusers-named weights, for files without a config: what
  // models::FluxShapes (flux_dit.h) reads, and
  //   mlp_ratio: the first double block's ff.linear_out columns / inner dim
  //   timestep_guidance_channels: the timestep embedder's linear_1 columns
  //   axes_dims_rope, rope_theta and eps are not in the weights: the release's.
  // Logs one line with what it found.
  static Flux2DiTConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // one line for logs
};

// Every parameter of the model for `config`, in diffusers' state-dict order: name and shape.
std::vector<ParameterSpec> flux2_dit_parameters(const Flux2DiTConfig& config);

// Random weights with the model's names and shapes, for speed measurements, made on `device`.
io::WeightStore flux2_dit_random_weights(const Flux2DiTConfig& config, DType dtype, uint64_t seed,
                                         Device device = Device::CPU);

// Floating-point operations (2 x multiply-adds) of one forward for one sample with `image_tokens`
// image (and reference) tokens and `text_tokens` text tokens: every linear applied per token and
// the attention matmuls (4 S^2 D per block, S = image + text tokens; with `cached_reference_tokens`
// R from a reference cache, 4 S (S + R) D). The per-sample modulation GEMVs are left out.
double flux2_dit_forward_flops(const Flux2DiTConfig& config, int64_t image_tokens,
                               int64_t text_tokens, int64_t cached_reference_tokens = 0);

// A token's position (t, h, w, l) as diffusers passes img_ids / txt_ids.
using Flux2Position = std::array<float, 4>;

// The ids of a rows x cols grid of latent tokens, row-major: (t, row, col, 0). t is 0 for the
// image being generated and 10 + 10 n for the n-th reference image (diffusers
// Flux2Pipeline._prepare_latent_ids / _prepare_image_ids).
std::vector<Flux2Position> flux2_image_ids(int64_t rows, int64_t cols, float t = 0.0f);

// FLUX.2 klein KV's reference tokens (diffusers Flux2KleinKVPipeline): they attend only to each
// other and are modulated at a fixed time, so every block's keys and values for them are the same
// at every step. reference_cache() computes them once; a forward given the cache appends them to
// each attention's keys and values, which is what diffusers' "extract" step and its "cached"
// steps both compute.
struct Flux2ReferenceCache {
  struct Kv {
    Tensor k, v;  // [B, R, heads, head_dim]: after QK-norm and RoPE, as attention reads them
  };
  std::vector<Kv> blocks;  // the double blocks', then the single blocks'
};

class Flux2Transformer {
 public:
  // Binds every parameter by its diffusers name; a missing or wrong-shaped tensor gives an error
  // naming it. Then puts the bound weights where `placement` says (placement.h).
  Flux2Transformer(const Flux2DiTConfig& config, const io::WeightStore& weights,
                   const Placement& placement = {});

  const Flux2DiTConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // The velocity [B, N, out_channels] for latent tokens x[B, N, in_channels] at positions img_ids
  // (N of them: the image's, then any reference images'), text states
  // txt[B, L, joint_attention_dim] (text token k at (0, 0, 0, k), as every diffusers FLUX.2
  // pipeline places them), sigmas t[b] in [0, 1] (the model multiplies by 1000) and, for
  // guidance-distilled models (dev), guidance[b]; empty for klein. The tensors may be float32 or
  // bfloat16 on any device; the result is float32 on x's device.
  // With `references`, every attention also reads the cached reference keys and values
  // (their batch must be x's).
  Tensor forward(const Tensor& x, std::span<const Flux2Position> img_ids, const Tensor& txt,
                 std::span<const float> t, std::span<const float> guidance = {},
                 const Flux2ReferenceCache* references = nullptr) const;

  // The reference tokens refs[B, R, in_channels] at ref_ids run alone through every block,
  // modulated at time t_ref (klein KV: 0) and, for dev, guidance; each block's keys and values.
  Flux2ReferenceCache reference_cache(const Tensor& refs, std::span<const Flux2Position> ref_ids,
                                      float t_ref, std::span<const float> guidance = {}) const;

  struct Mlp {  // Linear -> activation -> Linear, bias-free
    Tensor first, second;
  };
  struct Stream {  // one stream of a double block: the image or the text tokens
    Tensor q, k, v, out;
    Tensor norm_q, norm_k;
    Mlp mlp;  // SwiGLU: linear_in to 2 x hidden (gate, value), linear_out
  };
  struct DoubleBlock {
    Stream img, txt;
  };
  struct SingleBlock {
    Tensor qkv_mlp;  // dim -> 3 dim (q, k, v) + 2 hidden (gate, value)
    Tensor out;      // dim + hidden -> dim, on cat(attention, SwiGLU)
    Tensor norm_q, norm_k;
  };

 private:
  // What a block does with reference keys and values: appends `extra`'s to its own (a step
  // with a reference cache), or keeps its own in `keep` (the reference pass).
  struct KvUse {
    const Flux2ReferenceCache::Kv* extra = nullptr;
    Flux2ReferenceCache::Kv* keep = nullptr;
  };
  // The modulation inputs for times t (and guidance): SiLU of the conditioning vector, and the
  // three shared modulations computed from it.
  struct Modulations {
    Tensor vec, img, txt, single;
  };
  Modulations modulations(std::span<const float> t, std::span<const float> guidance) const;
  RopeTables rope_tables(int64_t text_tokens, std::span<const Flux2Position> img_ids) const;
  Tensor attend(const Tensor& q, const Tensor& k, const Tensor& v, KvUse kv) const;
  // txt null: the image stream alone (the reference pass).
  void double_block(const DoubleBlock& b, Tensor& img, Tensor* txt, const Modulations& mod,
                    const RopeTables& rope, KvUse kv) const;
  void single_block(const SingleBlock& b, Tensor& x, const Tensor& mod, const RopeTables& rope,
                    KvUse kv) const;
  // Every block in order over img (and txt, then [txt ; img]); kv(i) for block i. Returns the
  // joint sequence after the last single block.
  Tensor run_blocks(Tensor img, Tensor* txt, const Modulations& mod, const RopeTables& rope,
                    const std::function<KvUse(size_t)>& kv) const;

  Flux2DiTConfig config_;
  Placement placement_;
  Tensor x_embedder_, context_embedder_, norm_out_, proj_out_;
  Tensor modulation_img_, modulation_txt_, modulation_single_;
  Mlp time_embedder_, guidance_embedder_;
  std::vector<DoubleBlock> double_blocks_;
  std::vector<SingleBlock> single_blocks_;
  std::shared_ptr<OffloadedBlocks> offload_;  // --offload: the blocks' weights, streamed
};

// Opens the transformer from a diffusers transformer/ folder (config.json + sharded safetensors +
// index), its *.safetensors.index.json, a model folder holding transformer/, or a single file in
// either layout (diffusers names, or original BFL names with an optional `model.diffusion_model.`
// prefix as ComfyUI writes them). The config is `config` when given, else the folder's
// config.json (folders and index files only), else inferred from the weights. dev or klein: the
// weights decide (guidance embedder present or not); a config saying otherwise is an Error.
// `quantize` (--fp8, --int8) quantises the block linears as they load (io/load_quantization.h).
// The `loras` (PEFT / diffusers or BFL names) are merged into the weights before they are bound
// (models/lora.h).
Flux2Transformer load_flux2_transformer(const std::filesystem::path& path,
                                        const std::optional<Flux2DiTConfig>& config = {},
                                        io::LoadQuantization quantize = {},
                                        const Placement& placement = {},
                                        std::span<const LoraFile> loras = {});
Flux2Transformer load_flux2_transformer(const io::WeightStore& weights,
                                        const std::optional<Flux2DiTConfig>& config = {},
                                        const Placement& placement = {},
                                        std::span<const LoraFile> loras = {});

}  // namespace zflow::models
