// The Z-Image diffusion transformer ("S3-DiT", diffusers ZImageTransformer2DModel), text to
// image and Omni modes, built to diffusers' module tree so weights bind by their diffusers names:
//   all_x_embedder.2-1, noise_refiner.{i}, context_refiner.{i}, t_embedder.mlp.{0,2},
//   cap_embedder.{0,1}, x_pad_token, cap_pad_token, layers.{i}, all_final_layer.2-1
//   Omni (siglip_feat_dim set): siglip_embedder.{0,1}, siglip_refiner.{i}, siglip_pad_token
//   block: attention.{to_q, to_k, to_v, to_out.0, norm_q, norm_k}, feed_forward.w{1,2,3},
//          attention_norm{1,2}, ffn_norm{1,2}, adaLN_modulation.0 (modulated blocks)
// Reference: diffusers 0.42.1 models/transformers/transformer_z_image.py; the step-by-step
// math is /work/shared/facts/zimage.md section 1. ComfyUI / original single files are
// renamed by io/key_map_zimage.h before binding. On the CPU weights stay in their stored
// dtype and activations are float32; on the GPU (models/placement.h) both are bf16 by default.
// RoPE tables are built on the host in float32 and moved to the device once per input shape.
#pragma once

#include <algorithm>
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
#include "models/first_block_cache.h"
#include "models/lora.h"
#include "models/offload.h"
#include "models/parameters.h"
#include "models/placement.h"
#include "models/zimage_rope.h"

namespace zflow::models {

// Defaults are the release (Tongyi-MAI/Z-Image-Turbo transformer/config.json).
struct ZImageDiTConfig {
  int64_t in_channels = 16;  // = out channels
  int64_t patch_size = 2;    // all_patch_size [2]; all_f_patch_size [1] (one frame)
  int64_t dim = 3840;
  int n_layers = 30;
  int n_refiner_layers = 2;  // noise-refiner blocks, and as many context-refiner blocks
  int64_t n_heads = 30;
  int64_t n_kv_heads = 30;  // read but unused: diffusers' attention gives k and v n_heads
  float norm_eps = 1e-5f;
  bool qk_norm = true;
  int64_t cap_feat_dim = 2560;
  double rope_theta = 256.0;
  float t_scale = 1000.0f;
  std::vector<int64_t> axes_dims = {32, 48, 48};      // sums to the head dim
  std::vector<int64_t> axes_lens = {1536, 512, 512};  // RoPE table sizes per axis
  int64_t siglip_feat_dim = 0;  // Omni: SigLIP 2 features per condition patch; 0 without

  int64_t head_dim() const { return dim / n_heads; }
  int64_t adaln_dim() const { return std::min<int64_t>(dim, 256); }  // ADALN_EMBED_DIM
  int64_t ffn_dim() const {  // int(dim / 3 * 8) in Python float arithmetic
    return static_cast<int64_t>(static_cast<double>(dim) / 3.0 * 8.0);
  }
  int64_t patch_features() const { return patch_size * patch_size * in_channels; }

  // From a diffusers transformer/config.json; absent fields keep the defaults above. Several
  // patch sizes or a frame patch other than 1 are errors naming the field.
  static ZImageDiTConfig from_json(const std::string& json_text, const std::string& source);
  static ZImageDiTConfig from_json_file(const std::filesystem::path& path);

  // From the shapes of diffusers-named weights (the rule, for files without a config):
  //   dim: all_x_embedder.2-1.weight rows;  in_channels: its columns / 4 (patch 2 assumed)
  //   head dim: layers.0.attention.norm_q.weight length (n_heads = dim / head dim);
  //     without QK norm, the release head dim 128
  //   n_layers / n_refiner_layers: how many layers.{i} / noise_refiner.{i} exist
  //   cap_feat_dim: cap_embedder.0.weight length;  qk_norm: whether norm_q is present
  //   siglip_feat_dim: siglip_embedder.0.weight length, when present
  //   rope_theta, axes_dims, axes_lens, t_scale, norm_eps are not in the weights: the
  //   release values (an error if axes_dims then does not sum to the head dim).
  // Logs one line with what it found.
  static ZImageDiTConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // one line for logs
};

// Every parameter of the model for `config`, in diffusers' state-dict order: name and shape.
std::vector<ParameterSpec> zimage_dit_parameters(const ZImageDiTConfig& config);

// Random weights with the model's names and shapes, for speed measurements, made on `device`
// (models/parameters.h: one tensor at a time).
io::WeightStore zimage_dit_random_weights(const ZImageDiTConfig& config, DType dtype, uint64_t seed,
                                          Device device = Device::CPU);

// Floating-point operations (2 x multiply-adds) of one forward for one sample with
// `image_tokens` patches and a `caption_tokens` caption (both padded to 32 as the model
// does): the linears of every block and the attention matmuls. About 56.6 TFLOP for
// 1024x1024 and 128 caption tokens at the release size.
double zimage_dit_forward_flops(const ZImageDiTConfig& config, int64_t image_tokens,
                                int64_t caption_tokens);

class ZImageControlNet;  // models/zimage_controlnet.h

// A ControlNet's input to one forward: the control latent [1 or B, control_in_dim, H, W] (the
// latents' H and W; one row is shared by the batch) and the scale every hint is added with.
struct ZImageControl {
  const ZImageControlNet* net = nullptr;
  Tensor context;
  float scale = 1.0f;
};

struct ZImageTokenLayout;  // every stage's token positions (zimage_dit.cpp)

// A condition image of an Omni forward, the same for every sample of the batch.
struct ZImageOmniCondition {
  Tensor latents;  // [in_channels, h, w], h and w multiples of the patch size
  Tensor siglip;   // [rows, cols, siglip_feat_dim]: its SigLIP 2 features (a model with SigLIP)
};

class ZImageTransformer {
 public:
  // Binds every parameter by its diffusers name; a missing or wrong-shaped tensor gives an
  // error naming it. Then puts the bound weights where `placement` says (placement.h).
  ZImageTransformer(const ZImageDiTConfig& config, const io::WeightStore& weights,
                    const Placement& placement = {});

  const ZImageDiTConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // The raw model output [B, in_channels, H, W] (v = x0 - eps; pipelines negate it) for
  // latents[B, in_channels, H, W] (H and W multiples of the patch size), model times
  // t[b] = 1 - sigma in [0, 1], and one caption per sample, captions[b] = [L_b, cap_feat_dim]
  // with L_b >= 1. Latents and captions are F32 or BF16 on any device; the output is float32
  // on the latents' device. Samples with different caption lengths run as one batch with a
  // key-length attention mask, as diffusers does. With `control`, the ControlNet's hints are
  // added as its authors' code adds them (VideoX-Fun; facts/zimage.md 6.4): refiner hint j
  // after noise-refiner layer j, hint n after main layer control_layers_places[n], each times
  // the scale; its blocks run interleaved with the main ones, so one hint is alive at a time.
  // With `cache`, the main layers run as first_block_cache.h says (not with a ControlNet; the
  // model needs two layers or more).
  Tensor forward(const Tensor& latents, std::span<const float> t,
                 const std::vector<Tensor>& captions, const ZImageControl* control = nullptr,
                 FirstBlockCache* cache = nullptr) const;

  // Omni mode (diffusers' forward with nested lists, as ZImageOmniPipeline calls it): each
  // sample is the condition images (clean), then its target latents[b] (noisy), with one caption
  // segment per image and at least one more, captions[b][j] = [L, cap_feat_dim] (segments before
  // the target's are the condition images' and must pad to the same lengths in every sample).
  // Condition tokens are modulated with the embedding of t = 1, the rest with t[b]'s; a model
  // with SigLIP also reads each condition's SigLIP grid. Token positions follow diffusers 0.42.1
  // exactly, quirks included (facts/zimage.md 1.7; sequences_omni in the .cpp). Returns the raw
  // output for the targets [B, in_channels, H, W] float32 on the latents' device.
  Tensor forward_omni(const Tensor& latents, std::span<const float> t,
                      const std::vector<std::vector<Tensor>>& captions,
                      const std::vector<ZImageOmniCondition>& conditions) const;

  struct Linear {
    Tensor weight, bias;  // bias may be undefined
  };
  struct Block {
    Linear to_q, to_k, to_v, to_out;
    Tensor norm_q, norm_k;  // undefined without QK norm
    Tensor w1, w2, w3;      // SwiGLU: w2(silu(w1 x) * w3 x)
    Tensor attention_norm1, attention_norm2, ffn_norm1, ffn_norm2;
    std::optional<Linear> adaln;  // modulated blocks: adaln_dim -> 4 * dim
  };

 private:
  struct Sequence;      // token rows of one stage, with RoPE tables and the key mask
  struct Sequences;     // the stages' for one input shape
  struct RopeCache;     // the last shape's Sequences, on the placement's device
  struct ControlChain;  // a ControlNet's chain of control blocks, advanced one hint at a time
  // The adaLN input of a run of token rows: `noisy` [B, adaln_dim] for all of them, except (Omni)
  // the first `clean_rows`, which take `clean`.
  struct Modulation {
    Tensor noisy, clean;
    int64_t clean_rows = 0;
  };
  std::shared_ptr<const Sequences> sequences(int64_t ht, int64_t wt,
                                             const std::vector<int64_t>& cap_len) const;
  // The cached Sequences when `key` is the last one's, else make()'s.
  std::shared_ptr<const Sequences> cached(const std::vector<int64_t>& key,
                                          const std::function<ZImageTokenLayout()>& make) const;
  Tensor timestep_embedding(std::span<const float> t) const;
  Tensor block(const Block& b, const Tensor& x, const Sequence& seq, const Modulation& mod) const;
  Tensor block(const Block& b, const Tensor& x, const Sequence& seq, const Tensor& adaln) const {
    return block(b, x, seq, Modulation{adaln});
  }
  // after(i, x), when given, runs on block i's output (a ControlNet adds its hints there).
  Tensor run_blocks(const std::vector<Block>& blocks, size_t first, Tensor x, const Sequence& seq,
                    const Modulation& mod, const std::function<Tensor(size_t, Tensor)>& after = {},
                    FirstBlockCache* cache = nullptr) const;
  // Latents [B, C, h, w] as x_embedder tokens [B, padded length, dim], pad rows x_pad_token.
  Tensor embed_image(const Tensor& latents) const;
  // Omni's caption segments and SigLIP grids: feats [1, n, F] padded with zero rows to a
  // multiple of 32, RMSNorm(norm) + linear, the pad rows replaced by pad_token.
  Tensor embed_run(const Tensor& feats, const Tensor& norm, const Linear& linear,
                   const Tensor& pad_token) const;
  Tensor control_tokens(const ZImageControl& control, int64_t batch, int64_t x_len,
                        int64_t n_img) const;
  Tensor attention(const Block& b, const Tensor& x, const Sequence& seq) const;
  Tensor final_layer(const Tensor& x, const Modulation& mod) const;

  ZImageDiTConfig config_;
  Placement placement_;
  ZImageRope rope_;
  std::shared_ptr<RopeCache> rope_cache_;
  Linear x_embedder_, final_linear_, final_adaln_;
  Linear t_mlp0_, t_mlp2_;
  Tensor cap_norm_;
  Linear cap_linear_;
  Tensor x_pad_token_, cap_pad_token_;  // [dim] in the activation dtype
  std::vector<Block> noise_refiner_, context_refiner_, layers_;
  // Omni's SigLIP path (siglip_feat_dim > 0); its refiner blocks are never streamed.
  Tensor siglip_norm_, siglip_pad_token_;
  Linear siglip_linear_;
  std::vector<Block> siglip_refiner_;
  std::shared_ptr<OffloadedBlocks> offload_;  // --offload: the blocks' weights, streamed
};

// One ZImageTransformerBlock's parameters under `prefix` ("layers.3"), in its state-dict order,
// and a Linear's; the ControlNet's blocks are the same blocks.
ZImageTransformer::Block bind_zimage_block(ParameterBinder& bind, const std::string& prefix,
                                           const ZImageDiTConfig& config, bool modulated);
ZImageTransformer::Linear bind_zimage_linear(ParameterBinder& bind, const std::string& prefix,
                                             int64_t in, int64_t out, bool bias);

// Opens the transformer from a diffusers transformer/ folder (config.json + sharded
// safetensors + index), its *.safetensors.index.json, a model folder holding transformer/,
// or a single file in either layout (diffusers names, or ComfyUI / original names with an
// optional `model.diffusion_model.` prefix). The config is `config` when given, else the
// folder's config.json (folders and index files only), else inferred from the weights.
// `quantize` (--fp8, --int8) quantises the block linears as they load (io/load_quantization.h).
// The `loras` are merged into the weights before they are bound (models/lora.h).
ZImageTransformer load_zimage_transformer(const std::filesystem::path& path,
                                          const std::optional<ZImageDiTConfig>& config = {},
                                          const Placement& placement = {},
                                          io::LoadQuantization quantize = {},
                                          std::span<const LoraFile> loras = {});
// The same from weights already opened.
ZImageTransformer load_zimage_transformer(const io::WeightStore& weights,
                                          const std::optional<ZImageDiTConfig>& config = {},
                                          const Placement& placement = {},
                                          std::span<const LoraFile> loras = {});

}  // namespace zflow::models
