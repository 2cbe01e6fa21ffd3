// Checkpoint layouts of the Z-Image transformer and the map from the ComfyUI / original
// single-file names (Lumina2 NextDiT style, Comfy-Org/z_image_turbo) to diffusers'
// ZImageTransformer2DModel names (facts/zimage.md section 2.2; diffusers 0.42.1
// single_file_utils.convert_z_image_transformer_checkpoint_to_diffusers):
//   model.diffusion_model.*                 -> (prefix stripped)
//   x_embedder.*                            -> all_x_embedder.2-1.*
//   final_layer.{linear, adaLN_modulation.1}.* -> all_final_layer.2-1.*
//   {block}.attention.qkv.weight [3D, D]    -> {block}.attention.to_{q,k,v}.weight (rows split
//                                              q, k, v; zero-copy views)
//   {block}.attention.out.weight            -> {block}.attention.to_out.0.weight
//   {block}.attention.{q,k}_norm.weight     -> {block}.attention.norm_{q,k}.weight
//   norm_final.weight                       -> dropped (unused by the model)
//   every other name                        -> unchanged
// where {block} is noise_refiner.{i}, context_refiner.{i} or layers.{i}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "io/key_map.h"
#include "io/weight_store.h"

namespace zflow::io {

enum class ZImageLayout { Diffusers, Original };
std::string_view zimage_layout_name(ZImageLayout layout);

// Removes ComfyUI's `model.diffusion_model.` prefix when the transformer's tensors carry it
// (keeping only those tensors); returns the store unchanged otherwise.
WeightStore strip_zimage_prefix(const WeightStore& store);

// Which layout the (prefix-free) names are in: diffusers has `all_x_embedder.2-1.weight`,
// the original layout `x_embedder.weight`. An Error when neither is present.
ZImageLayout detect_zimage_layout(const WeightStore& store);

// Block counts of a checkpoint in either layout, from its names (the number of
// `{prefix}.{i}.attention_norm1.weight` present).
struct ZImageBlockCounts {
  int layers = 0;
  int noise_refiner = 0;
  int context_refiner = 0;
};
ZImageBlockCounts count_zimage_blocks(const WeightStore& store);
// How many blocks `kind`.0, `kind`.1, ... ("layers", "control_layers") the store holds in a row.
int count_zimage_block_run(const WeightStore& store, std::string_view kind);

// Where every original-layout `.weight` of a model with `counts` blocks lands (io/key_map.h).
std::vector<RowMapping> zimage_weight_row_mappings(ZImageBlockCounts counts);

// The diffusers-named store for an original-layout one, with the table expanded for
// `counts`. A name the table does not cover, or a fused qkv whose rows do not split in
// three, is an Error naming it.
WeightStore original_zimage_to_diffusers(const WeightStore& store, ZImageBlockCounts counts);

// The inverse: the original-layout store (ComfyUI's split-file names, no prefix) for a
// diffusers-named one, the q/k/v projections of each block fused into one new [3D, D]
// tensor. Used to write checkpoints other programs load (benchmarks against
// stable-diffusion.cpp on the same files). A tensor the table does not cover is an Error.
WeightStore diffusers_zimage_to_original(const WeightStore& store, ZImageBlockCounts counts);

}  // namespace zflow::io
