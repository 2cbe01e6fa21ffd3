// What --fp8 and --int8 ask of a transformer's weights as it loads: its block linears (the
// matrices io::quantize_picked_matrices picks; embedders, modulation, norms and the final layer
// keep their dtype) quantised as ComfyUI stores them, to scaled float8 e4m3 or to int8 rows.
#pragma once

#include "core/tensor.h"
#include "io/weight_store.h"

namespace zflow::io {

enum class LoadQuantization { None, Fp8, Int8 };

// The store with its block linears quantised. Int8 is refused for a GPU placement (`device`):
// int8 layers compute as W8A8 on the CPU, while a GPU widens them back at upload, so nothing
// would be saved there (--fp8 is the GPU's form).
// Given the only reference to the store (a temporary), each original is released as it is
// replaced.
WeightStore quantize_at_load(WeightStore store, LoadQuantization quantize, Device device);

}  // namespace zflow::io
