// AutoencoderKL: the convolutional VAE that FLUX.1 and Z-Image share (16 latent
// channels, 8x spatial factor), built to diffusers' module tree so weights bind by
// their diffusers names:
//   encoder.{conv_in, down_blocks.N.{resnets.M, downsamplers.0.conv}, mid_block,
//            conv_norm_out, conv_out}
//   decoder.{conv_in, mid_block, up_blocks.N.{resnets.M, upsamplers.0.conv},
//            conv_norm_out, conv_out}
//   mid_block.{resnets.0, attentions.0.{group_norm, to_q, to_k, to_v, to_out.0}, resnets.1}
// Reference: diffusers 0.42.1 models/autoencoders/{autoencoder_kl.py, vae.py},
// models/resnet.py (ResnetBlock2D), models/attention_processor.py (Attention with
// group_norm, one head); BFL flux src/flux/modules/autoencoder.py for the same network.
// Checkpoints in the original (BFL / ComfyUI) layout are renamed by
// io/key_map_autoencoder.h before binding.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/parameters.h"
#include "models/placement.h"

namespace zflow::models {

// Defaults are the FLUX.1 release (black-forest-labs/FLUX.1-dev vae/config.json).
struct AutoencoderKLConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 16;
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};
  int layers_per_block = 2;  // resnets per encoder level; the decoder has one more
  int norm_num_groups = 32;
  float norm_eps = 1e-6f;  // fixed in diffusers' Encoder/Decoder, not a config field
  float scaling_factor = 0.3611f;
  float shift_factor = 0.1159f;
  bool mid_block_add_attention = true;
  bool use_quant_conv = false;
  bool use_post_quant_conv = false;

  // From a diffusers vae/config.json; absent fields keep the defaults above. Errors name
  // `source` and the field.
  static AutoencoderKLConfig from_json(const std::string& json_text, const std::string& source);
  static AutoencoderKLConfig from_json_file(const std::filesystem::path& path);

  // From the shapes of diffusers-named weights (the rule, for files without a config):
  //   levels and block_out_channels[i]: encoder.down_blocks.{i}.resnets.0.conv1.weight rows
  //   layers_per_block: how many encoder.down_blocks.0.resnets.{j} exist
  //   in_channels: encoder.conv_in.weight dim 1;  out_channels: decoder.conv_out.weight dim 0
  //   latent_channels: decoder.conv_in.weight dim 1
  //   mid attention / quant convs: whether their weights are present
  //   norm_num_groups, eps, scaling and shift are not in the weights: the FLUX.1 values.
  // Logs one line with what it found.
  static AutoencoderKLConfig infer_from_weights(const io::WeightStore& weights);

  int64_t levels() const { return static_cast<int64_t>(block_out_channels.size()); }
  std::string summary() const;  // one line for logs
};

// Every parameter of the model for `config`, in binding order: its diffusers name and shape.
std::vector<ParameterSpec> autoencoder_kl_parameters(const AutoencoderKLConfig& config);

// Random weights with the model's names and shapes, for speed measurements, made on `device`
// (models/parameters.h says how the values are drawn).
io::WeightStore autoencoder_kl_random_weights(const AutoencoderKLConfig& config, DType dtype,
                                              uint64_t seed, Device device = Device::CPU);

// Floating-point operations (2 x multiply-adds) of the decoder's convolutions and
// mid-block attention for an image of height x width pixels, for benchmark rates.
double autoencoder_kl_decoder_flops(const AutoencoderKLConfig& config, int64_t height,
                                    int64_t width);

class AutoencoderKL {
 public:
  // Binds every parameter by its diffusers name; a missing or wrong-shaped tensor gives an
  // error naming it. The bound weights are then put where `placement` says (placement.h):
  // images and latents are taken on any device in F32 or BF16 and every result (posterior,
  // image, latent) is float32 on the device of the input it came from.
  AutoencoderKL(const AutoencoderKLConfig& config, const io::WeightStore& weights,
                const Placement& placement = {});

  const AutoencoderKLConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  // The diagonal Gaussian posterior of image[B, in_channels, H, W] (values in [-1, 1],
  // H and W multiples of 2^(levels-1)): mean and logvar [B, latent, H/f, W/f], logvar
  // clamped to [-30, 20] as diffusers' DiagonalGaussianDistribution does.
  struct Posterior {
    Tensor mean, logvar;
  };
  Posterior encode(const Tensor& image) const;
  // The encoder's raw output [B, 2 * latent, H/f, W/f] (mean, then logvar unclamped), and the
  // posterior it describes: what encode() is made of, apart so tiles can be blended in between.
  Tensor encode_moments(const Tensor& image) const;
  static Posterior posterior(const Tensor& moments, int64_t latent_channels);

  // The image [B, out_channels, 8h, 8w] (about [-1, 1]) for a NORMALISED latent
  // z[B, latent, h, w]: runs the decoder on denormalize_latent(z).
  Tensor decode(const Tensor& z) const;
  // The decoder on a raw (posterior-space) latent.
  Tensor decode_raw(const Tensor& latent) const;

  // z = (latent - shift) * scale, the space the diffusion transformer works in, and back.
  Tensor normalize_latent(const Tensor& latent) const;
  Tensor denormalize_latent(const Tensor& z) const;

  // mean + exp(0.5 * logvar) * eps, eps drawn as torch.randn(mean.shape, generator=g)
  // (diffusers' posterior.sample(generator)); or with a given eps of mean's shape.
  static Tensor sample(const Posterior& posterior, Generator& generator);
  static Tensor sample_with_noise(const Posterior& posterior, const Tensor& eps);

  struct Conv {
    Tensor weight, bias;
  };
  struct Norm {
    Tensor weight, bias;
  };
  struct Linear {
    Tensor weight, bias;
  };
  struct ResnetBlock {
    Norm norm1;
    Conv conv1;
    Norm norm2;
    Conv conv2;
    std::optional<Conv> conv_shortcut;  // 1x1, when in and out channels differ
  };
  struct MidAttention {
    Norm group_norm;
    Linear to_q, to_k, to_v, to_out;
  };
  struct MidBlock {
    ResnetBlock resnet0;
    std::optional<MidAttention> attention;
    ResnetBlock resnet1;
  };
  struct Level {  // a down block of the encoder or an up block of the decoder
    std::vector<ResnetBlock> resnets;
    std::optional<Conv> resample;  // downsamplers.0.conv / upsamplers.0.conv
  };
  struct Encoder {
    Conv conv_in;
    std::vector<Level> down_blocks;
    MidBlock mid_block;
    Norm conv_norm_out;
    Conv conv_out;
  };
  struct Decoder {
    Conv conv_in;
    MidBlock mid_block;
    std::vector<Level> up_blocks;
    Norm conv_norm_out;
    Conv conv_out;
  };

 private:
  Tensor resnet(const ResnetBlock& block, const Tensor& x) const;
  Tensor mid_attention(const MidAttention& attn, const Tensor& x) const;
  Tensor mid_block(const MidBlock& block, const Tensor& x) const;

  AutoencoderKLConfig config_;
  Placement placement_;
  Encoder encoder_;
  Decoder decoder_;
  std::optional<Conv> quant_conv_, post_quant_conv_;
};

// Opens an autoencoder from a diffusers vae/ folder (config.json + safetensors), a single
// file in either layout (diffusers names, or BFL / ComfyUI `ae.safetensors` names, with a
// `first_stage_model.` or `vae.` prefix stripped), or a full ComfyUI checkpoint. The
// config is `config` when given, else the folder's config.json (folders only), else
// inferred from the weight shapes.
AutoencoderKL load_autoencoder_kl(const std::filesystem::path& path,
                                  const std::optional<AutoencoderKLConfig>& config = {},
                                  const Placement& placement = {});
// The same from weights already opened.
AutoencoderKL load_autoencoder_kl(const io::WeightStore& weights,
                                  const std::optional<AutoencoderKLConfig>& config = {},
                                  const Placement& placement = {});

}  // namespace zflow::models
