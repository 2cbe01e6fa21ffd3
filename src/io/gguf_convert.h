// Conversion of a model's weights to a GGUF file with quantised matrices (what
// `zflow convert` runs). Per-tensor rules, after ComfyUI-GGUF's converter and llama.cpp's
// quantize: only matrices are quantised; what is small or sensitive keeps a float type.
//   - 1-D tensors (norms, biases, pad tokens) and tensors of at most 1024 values: F32;
//   - names with a high-precision part (embedders, modulation, final layer, norms, pad
//     tokens; kHighPrecisionParts): their stored float type (F32 / BF16 / F16; float8 ->
//     BF16, exact; F64 -> F32);
//   - other 2-D+ tensors: the target type when a row is whole blocks of it, else Q8_0 when
//     a row is whole blocks of 32, else their stored float type.
// Names are kept as given: convert a ComfyUI single file (with its prefix stripped) to get
// the layout ComfyUI-GGUF publishes.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "io/gguf.h"
#include "io/weight_store.h"

namespace zflow::io {

struct GgufConvertOptions {
  DType target = DType::Q8_0;  // Q8_0, Q4_0, Q4_K, Q5_K or Q6_K
  std::string architecture;    // general.architecture ("lumina2", "flux", "qwen3", ...)
  std::vector<std::pair<std::string, GgufValue>> metadata;  // more keys, written after it
};

// The name parts that keep a tensor out of quantisation.
extern const std::vector<std::string> kHighPrecisionParts;

// Whether the rules above keep tensor `name` in a float type whatever the target: 1-D, small,
// or named with a high-precision part. (`--fp8` shares this rule, io/fp8_weights.h.)
bool keeps_float_type(const std::string& name, const Tensor& t);

// The dtype the rules above give tensor `name` of shape/dtype `t` for `target`.
DType gguf_convert_dtype(const std::string& name, const Tensor& t, DType target);

// Writes every tensor of `weights` (in name order) to `out`, converted by the rules.
void convert_to_gguf(const WeightStore& weights, const std::filesystem::path& out,
                     const GgufConvertOptions& options);

}  // namespace zflow::io
