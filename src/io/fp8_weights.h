// Float8 weights: ComfyUI's fp8 single files read as scaled float8 tensors (Tensor::scale()),
// and float weights quantised to scaled e4m3 at load (`--fp8`). A scaled tensor is an ordinary
// weight to the models: ops::linear keeps it at one byte a value and applies the scale.
//
// The layouts, as ComfyUI reads them (comfy/utils.py convert_old_quants, comfy/ops.py
// mixed_precision_ops, comfy-kitchen's TensorCoreFP8Layout):
//   - plain fp8: float8 `<layer>.weight` without a scale (scale 1);
//   - "scaled fp8" (older): a `scaled_fp8` marker tensor (under the model's prefix), and per
//     layer `<layer>.scale_weight` (float32 scalar) and maybe `<layer>.scale_input`;
//   - per-layer quantisation (newer): `<layer>.weight_scale` (float32 scalar), maybe
//     `<layer>.input_scale`, and the layer's format in `<layer>.comfy_quant` (UTF-8 JSON
//     {"format": "float8_e4m3fn", ...} stored as uint8) and/or in the header metadata
//     `_quantization_metadata` ({"layers": {"<layer>": {"format": ...}}}).
// value = float(stored) * scale. Input scales are dropped: activations are scaled from their
// own absolute maximum where they are quantised (the CUDA FP8 matmul), as ComfyUI does for
// layers without one.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"

namespace zflow::io {

// Resolves the layouts above in place: every float8 `<layer>.weight` takes its scale, and the
// scale, input-scale, comfy_quant and scaled_fp8 tensors are removed, so models see only their
// own names. Float8 tensors no model multiplies as a matrix (anything not 2-D: norm weights,
// biases, conv kernels) become float32 (times their scale). `quantization_metadata` holds the
// `_quantization_metadata` header values of the files read. A quantisation format other than
// float8_e4m3fn / float8_e5m2 (nvfp4, mxfp8, int8, ...), a scale that is not one finite value,
// or a format that disagrees with the stored dtype is an Error naming the layer.
void resolve_fp8_weights(WeightStore& store,
                         const std::vector<std::string>& quantization_metadata = {});

// Quantises a float tensor (F32, BF16, F16) to e4m3 with one scale, exactly as ComfyUI does
// (comfy-kitchen quantize_per_tensor_fp8 with scale = amax / 448): computed in the tensor's own
// dtype, scale = rnd(amax / 448) as float32, q = e4m3(clamp(rnd(w * rnd(1 / scale)), -448, 448))
// where rnd rounds to the tensor's dtype. An all-zero tensor gets scale 1. Returns a new host
// tensor (1 byte a value) carrying the scale.
Tensor quantize_fp8_e4m3(const Tensor& t);

// Whether `--fp8` quantises tensor `name`: float (F32 / BF16 / F16) matrices (2-D) that
// gguf_convert's rules would quantise, i.e. not small, not an embedder, modulation, norm or
// final layer (io/gguf_convert.h, kHighPrecisionParts).
bool fp8_quantizes(const std::string& name, const Tensor& t);

// The store with every tensor fp8_quantizes() picks replaced by quantise(tensor) (the rest
// shared, not copied). Given the only reference to a store, each original is released as soon as
// it is replaced, so quantising holds one of them at a time beside the quantised ones. Logs "[tag]
// ...: N matrices quantised to `what`" with the bytes before and after. `--fp8` and `bench --int8`
// (io/int8_weights.h) quantise through it.
WeightStore quantize_picked_matrices(WeightStore store,
                                     const std::function<Tensor(const Tensor&)>& quantise,
                                     std::string_view tag, std::string_view what);

// quantize_picked_matrices with quantize_fp8_e4m3.
WeightStore quantize_weights_fp8(WeightStore store);

}  // namespace zflow::io
