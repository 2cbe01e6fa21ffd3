// The Qwen3 and Mistral text encoders' names in llama.cpp GGUF files (convert_hf_to_gguf.py,
// gguf-py tensor_mapping.py for MODEL_ARCH.QWEN3 and LLAMA, the architecture Mistral's models
// are written as) and the map to transformers' Qwen3Model / MistralModel names:
//   token_embd.weight            -> embed_tokens.weight
//   blk.{i}.attn_norm.weight     -> layers.{i}.input_layernorm.weight
//   blk.{i}.attn_{q,k,v}.weight  -> layers.{i}.self_attn.{q,k,v}_proj.weight
//   blk.{i}.attn_output.weight   -> layers.{i}.self_attn.o_proj.weight
//   blk.{i}.attn_{q,k}_norm.weight -> layers.{i}.self_attn.{q,k}_norm.weight
//   blk.{i}.ffn_norm.weight      -> layers.{i}.post_attention_layernorm.weight
//   blk.{i}.ffn_{gate,up,down}.weight -> layers.{i}.mlp.{gate,up,down}_proj.weight
//   output_norm.weight           -> norm.weight
//   output.weight                -> dropped (the LM head; an encoder has none)
// Qwen3 uses NEOX-style (half-split) RoPE in llama.cpp, so its converter does not permute
// the q / k rows: the tensors are transformers' own. For "llama" (Mistral) it does permute them,
// so that each rotary pair (j, j + D/2) of a head sits at rows (2j, 2j + 1): the names map as
// above and the encoder rotates interleaved pairs instead (Qwen3Config::rope_interleaved).
#pragma once

#include "io/weight_store.h"

namespace zflow::io {

// Whether the store holds llama.cpp-named text-model tensors (token_embd + blk.0.attn_q).
bool has_llamacpp_qwen3_names(const WeightStore& store);

// The transformers-named store; a name the table does not cover is an Error naming it.
WeightStore llamacpp_qwen3_to_transformers(const WeightStore& store);

}  // namespace zflow::io
