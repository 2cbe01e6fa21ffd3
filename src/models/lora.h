// LoRA: low-rank weight updates W' = W + scale * (alpha / rank) * up @ down, merged into a
// model's weights as they load (diffusers' fuse_lora, ComfyUI's LoraLoader, stable-diffusion.cpp's
// default for float weights), so a step costs what it costs without them.
//
// A LoRA file (safetensors) holds, per patched module, a `down` [rank, in] and an `up`
// [out, rank] matrix and maybe an `alpha` scalar (absent: alpha = rank). The trainers spell them
//   PEFT / diffusers:  <module>.lora_A.weight, <module>.lora_B.weight (also .lora_A.default.weight)
//   kohya:             <module>.lora_down.weight, <module>.lora_up.weight, <module>.alpha
//   dotted:            <module>.lora.down.weight, <module>.lora.up.weight
// or LyCORIS's other updates, each with its `alpha`:
//   LoKr:  kron(w1, w2) * alpha / rank, w1 = <module>.lokr_w1 or lokr_w1_a @ lokr_w1_b, w2 the
//          same; rank the inner size of the first factorised half (neither: scale 1)
//   LoHa:  (hada_w1_a @ hada_w1_b) * (hada_w2_a @ hada_w2_b) elementwise, * alpha / rank
// (Tucker factorisations, lokr_t2 / hada_t1 / hada_t2, are refused: convolutions only),
// with <module> under a prefix (transformer., diffusion_model., model.diffusion_model.,
// base_model.model., lora_unet_) in the model's diffusers names or its original ones (BFL /
// ComfyUI: FLUX's fused qkv and linear1, Z-Image's fused qkv; io/key_map.h), dots or kohya's
// underscores between the parts. An update of a fused original weight is split by rows over the
// diffusers weights it became.
//
// BFL's FLUX.1 Canny / Depth LoRAs (flux1-canny-dev-lora.safetensors) bring three more things, as
// diffusers' load_lora_weights reads them: PEFT's lora_B biases (scale * bias added to the
// module's bias), a down matrix wider than the weight (x_embedder's 64 inputs become 128: the
// weight is zero-padded, then updated, so dev becomes Canny / Depth-dev) and QK-norm scales
// (`...norm.query_norm.scale`, or diffusers' `...norm_q.weight`) that replace the model's,
// whatever the LoRA's scale.
//
// The merge is computed in float32 and stored back in the weight's dtype (float32, bf16, f16;
// a scaled float8 weight is requantised with a new scale, an int8 one with new row scales in its
// ConvRot basis, as ComfyUI requantises its quantised layers). A GGML block-quantised weight is
// requantised to its own type, as stable-diffusion.cpp does, so a Q4 model stays Q4-sized with
// a LoRA (the merged values are rounded once more, to that type's step); the types zflow cannot
// write (Q2_K, Q3_K) become bf16 instead.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/key_map.h"
#include "io/weight_store.h"

namespace zflow::models {

struct LoraFile {
  std::filesystem::path path;
  float scale = 1.0f;  // the user's strength, times alpha / rank
};

// What a LoRA file holds, as `zflow info` tells it.
struct LoraContents {
  int modules = 0;                     // down / up pairs
  int64_t min_rank = 0, max_rank = 0;  // of those pairs
  int up_biases = 0;                   // PEFT lora_B biases
  int other_tensors = 0;               // norm scales (Canny / Depth LoRAs) and the like
  std::string naming;                  // "PEFT / diffusers", "kohya", "dotted"
  std::string model;                   // "FLUX", "Z-Image", or "" when the names do not say
  // x_embedder / img_in's input features when a pair widens FLUX.1's 64 and norm scales come
  // with it (BFL's Canny / Depth; FLUX.2 reads 128 itself), else 0.
  int64_t widened_input = 0;
  std::string summary() const;  // one line
};

// nullopt when `file` has no down / up pair (not a LoRA).
std::optional<LoraContents> inspect_lora(const io::WeightStore& file);

// Parses "PATH" or "PATH:SCALE" (the CLI's --lora); a scale that is not a finite number is an
// Error naming the flag's value.
LoraFile parse_lora_argument(const std::string& argument);

// `weights` (diffusers names) with every LoRA of `loras` merged in, applied in order. `original`
// maps the model's original-layout names onto those weights, so files in either naming apply.
// `what` names the model in messages. A file none of whose modules is part of the model, a
// module without its down or up matrix, or shapes that do not fit the weight are Errors naming
// the file and key; modules of other components (text encoders) are skipped with a warning.
io::WeightStore merge_loras(const io::WeightStore& weights, std::span<const LoraFile> loras,
                            std::span<const io::RowMapping> original, std::string_view what);

}  // namespace zflow::models
