// Checkpoint layouts of the KL autoencoder (FLUX.1 / Z-Image / SD VAEs) and the map from
// the original BFL / LDM / ComfyUI names to diffusers' AutoencoderKL names:
//   encoder.down.{i}.block.{j}.*          -> encoder.down_blocks.{i}.resnets.{j}.*
//   encoder.down.{i}.downsample.conv      -> encoder.down_blocks.{i}.downsamplers.0.conv
//   decoder.up.{L-1-i}.block.{j}.*        -> decoder.up_blocks.{i}.resnets.{j}.*  (reversed)
//   decoder.up.{L-1-i}.upsample.conv      -> decoder.up_blocks.{i}.upsamplers.0.conv
//   *.nin_shortcut                         -> *.conv_shortcut
//   *.mid.block_1 / block_2                -> *.mid_block.resnets.0 / resnets.1
//   *.mid.attn_1.{norm,q,k,v,proj_out}     -> *.mid_block.attentions.0.{group_norm,to_q,to_k,
//                                             to_v,to_out.0}   (1x1 conv [C,C,1,1] -> [C,C])
//   *.norm_out                             -> *.conv_norm_out
//   encoder.quant_conv, decoder.post_quant_conv (FLUX.2) -> quant_conv, post_quant_conv
//   bn.* (FLUX.2's latent BatchNorm statistics) -> bn.*
// (diffusers single_file_utils.convert_ldm_vae_checkpoint; BFL flux autoencoder.py.)
#pragma once

#include <string>

#include "io/weight_store.h"

namespace zflow::io {

enum class AutoencoderLayout { Diffusers, Original };
std::string_view autoencoder_layout_name(AutoencoderLayout layout);

// Removes a ComfyUI checkpoint prefix (`first_stage_model.` or `vae.`) when the VAE's
// tensors carry one; returns the store unchanged otherwise.
WeightStore strip_autoencoder_prefix(const WeightStore& store);

// Which layout the (prefix-free) names are in; an Error when neither fits.
AutoencoderLayout detect_autoencoder_layout(const WeightStore& store);

// Level and resnet counts of an original-layout checkpoint, from its names: levels =
// number of encoder.down.{i}, layers_per_block = number of encoder.down.0.block.{j}.
struct AutoencoderCounts {
  int levels = 0;
  int layers_per_block = 0;  // encoder resnets per level; the decoder has one more
};
AutoencoderCounts count_original_autoencoder_layers(const WeightStore& store);

// The diffusers-named store for an original-layout one, with the table expanded for
// `counts`. A name the table does not cover is an Error naming it.
WeightStore original_autoencoder_to_diffusers(const WeightStore& store, AutoencoderCounts counts);

// The inverse: the original-layout (BFL `ae.safetensors`) store for a diffusers-named one,
// the attention projections as 1x1 conv kernels again. Used to write checkpoints other
// programs load (benchmarks against stable-diffusion.cpp on the same files). A tensor the
// table does not cover is an Error naming it.
WeightStore diffusers_autoencoder_to_original(const WeightStore& store, AutoencoderCounts counts);

}  // namespace zflow::io
