// Int8 weights: ComfyUI's int8 single files (comfy-kitchen's TensorWiseINT8Layout, format
// "int8_tensorwise"), read as I8 tensors with row scales (Tensor::row_scales). A layer holds
//   <layer>.weight        I8 [out, in]
//   <layer>.weight_scale  float32: one value (tensorwise), or one per output row ([out] or
//                         [out, 1], ComfyUI's per-channel form)
//   <layer>.comfy_quant   {"format": "int8_tensorwise", "convrot": true, "convrot_groupsize": 256}
//                         (or the same settings under `_quantization_metadata`)
// With "convrot" the rows were rotated by ConvRot's Hadamard matrix (core/hadamard.h) in groups
// of convrot_groupsize (default 256) before they were quantised: value = (q * scale) · H.
//
// ops::linear runs them as ComfyUI does (W8A8: activations rotated and quantised per row to
// int8, integer products, both scales applied after); other readers get the dequantised
// values through Tensor::to.
#pragma once

#include <string>
#include <vector>

#include "io/weight_store.h"

namespace zflow::io {

// Resolves the layout above in place: every I8 `<layer>.weight` with int8_tensorwise settings
// takes its scales (and rotation), and the scale and comfy_quant tensors are removed. An I8
// weight without settings, settings whose group is not a power of four dividing the row, a
// scale that is not finite or of the wrong size, or an int8 weight that is not a matrix is an
// Error naming the layer.
void resolve_int8_weights(WeightStore& store,
                          const std::vector<std::string>& quantization_metadata = {});

// Quantises a float matrix [out, in] as comfy-kitchen does for a float32 tensor
// (quantize_int8_convrot_weight, or quantize_int8_rowwise when hadamard_group is 0; all in
// float32): rows rotated, then each row's
// scale = max(amax / 127, 1e-30) and q = clamp(round_half_even(w / scale), -128, 127). Returns
// an I8 tensor with row scales. LoRA merging requantises int8 weights this way.
Tensor quantize_int8_rows(const Tensor& w, int64_t hadamard_group);

// The ConvRot group the published int8 convrot files use for matrix w [out, in]: 256 where it
// divides `in`, else 0 (row-wise scales without a rotation).
int64_t int8_convrot_group(const Tensor& w);

// The store with every tensor io::fp8_quantizes() picks quantised by quantize_int8_rows in its
// int8_convrot_group, as ComfyUI's int8 convrot files are (the rest shared, not copied).
// --int8 loads with it.
WeightStore quantize_weights_int8(WeightStore store);

}  // namespace zflow::io
