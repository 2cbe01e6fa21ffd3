// Checkpoint layouts of the FLUX.1 and FLUX.2 transformers and the maps from the original BFL names
// (flux1-dev.safetensors, flux1-schnell.safetensors; ComfyUI diffusion-model files carry the same
// names under `model.diffusion_model.`) to diffusers' FluxTransformer2DModel names
// (facts/flux.md section 2.2; diffusers 0.42.1 scripts/convert_flux_to_diffusers.py):
//   time_in / vector_in / guidance_in .{in,out}_layer -> time_text_embed.{timestep,text,guidance}
//                                                        _embedder.linear_{1,2}
//   txt_in, img_in                    -> context_embedder, x_embedder
//   double_blocks.N.{img,txt}_mod.lin -> transformer_blocks.N.norm1{,_context}.linear
//   double_blocks.N.img_attn.qkv      -> transformer_blocks.N.attn.to_{q,k,v} (rows split in three)
//   double_blocks.N.txt_attn.qkv      -> transformer_blocks.N.attn.add_{q,k,v}_proj
//   double_blocks.N.{img,txt}_attn.norm.{query,key}_norm.scale
//                                     -> attn.norm_{q,k}.weight / attn.norm_added_{q,k}.weight
//   double_blocks.N.{img,txt}_attn.proj -> attn.to_out.0 / attn.to_add_out
//   double_blocks.N.{img,txt}_mlp.{0,2} -> ff{,_context}.net.0.proj / ff{,_context}.net.2
//   single_blocks.N.linear1           -> single_transformer_blocks.N.attn.to_{q,k,v}, proj_mlp
//                                        (rows split [D, D, D, rest], D = img_in rows)
//   single_blocks.N.linear2           -> single_transformer_blocks.N.proj_out
//   single_blocks.N.norm.{query,key}_norm.scale -> attn.norm_{q,k}.weight
//   single_blocks.N.modulation.lin    -> single_transformer_blocks.N.norm.linear
//   final_layer.linear                -> proj_out
//   final_layer.adaLN_modulation.1    -> norm_out.linear with its two row halves SWAPPED: BFL
//                                        stores (shift, scale), diffusers' AdaLayerNormContinuous
//                                        chunks (scale, shift)
// FLUX.2 (flux2-dev.safetensors, flux-2-klein-*.safetensors) renames the same way where it has
// the same modules, and otherwise (facts/flux.md section 2.3):
//   time_in / guidance_in .{in,out}_layer -> time_guidance_embed.{timestep,guidance}_embedder
//                                            .linear_{1,2}
//   double_stream_modulation_{img,txt}.lin, single_stream_modulation.lin -> the same with .linear
//   double_blocks.N.{img,txt}_mlp.{0,2} -> ff{,_context}.linear_{in,out}
//   single_blocks.N.linear1 / linear2   -> single_transformer_blocks.N.attn.to_qkv_mlp_proj /
//                                          attn.to_out (kept fused, as diffusers keeps them)
// Every split is a zero-copy row view of the mapped file; only the swapped final modulation is a
// copy.
#pragma once

#include <string_view>
#include <vector>

#include "io/key_map.h"
#include "io/weight_store.h"

namespace zflow::io {

enum class FluxLayout { Diffusers, Original };
std::string_view flux_layout_name(FluxLayout layout);

enum class FluxGeneration { Flux1, Flux2 };
std::string_view flux_generation_name(FluxGeneration generation);  // "FLUX.1", "FLUX.2"

// FLUX.2 has the shared modulations (`double_stream_modulation_img.lin.weight`, or `.linear.`
// in diffusers' names) that FLUX.1 does not; names prefix-free, either layout.
FluxGeneration detect_flux_generation(const WeightStore& store);

// The transformer's tensors with whatever prefix stands before them (ComfyUI's
// `model.diffusion_model.`, or none) removed, other components' tensors dropped. The anchor is
// `txt_in.weight` (original) or `context_embedder.weight` (diffusers); neither is an Error.
WeightStore flux_transformer_weights(const WeightStore& store);

// Which layout the (prefix-free) names are in. An Error when neither anchor is present.
FluxLayout detect_flux_layout(const WeightStore& store);

struct FluxBlockCounts {
  int double_blocks = 0;
  int single_blocks = 0;
};
// Block counts of a prefix-free checkpoint in either layout, from its names.
FluxBlockCounts count_flux_blocks(const WeightStore& store);

// Whether the checkpoint has the guidance embedder (FLUX.1-dev, FLUX.2-dev; schnell and klein have
// none): `guidance_in.*`, or diffusers' `time_text_embed.guidance_embedder.*` (FLUX.1) or
// `time_guidance_embed.guidance_embedder.*` (FLUX.2).
bool flux_has_guidance(const WeightStore& store);

// Where every original-layout tensor (weights, biases, norm scales) of a model with `counts`
// blocks lands (io/key_map.h).
std::vector<RowMapping> flux_row_mappings(FluxGeneration generation, FluxBlockCounts counts);

// The diffusers-named store for an original-layout one of either generation. A name the table does
// not cover, or a fused tensor whose rows do not split, is an Error naming it.
WeightStore original_flux_to_diffusers(const WeightStore& store);

}  // namespace zflow::io
