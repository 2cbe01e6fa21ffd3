// Writes a model as the quantised single files ComfyUI publishes and loads (and zflow reads back
// through io/comfy_quant.h): the matrices --fp8 / --int8 pick (io::fp8_quantizes) become
//   <layer>.weight        F8_E4M3 [out, in]   or  I8 [out, in] (rows ConvRot-rotated in groups
//                                                  of 256 where they divide them)
//   <layer>.weight_scale  F32 []              or  F32 [out, 1]
//   <layer>.comfy_quant   the layer's settings as uint8 JSON: {"format": "float8_e4m3fn"} or
//                         {"format": "int8_tensorwise"[, "convrot": true, "convrot_groupsize":
//                         256]}
// and every other tensor is copied as it is, under the same names. Written one tensor at a
// time: a model larger than memory converts.
#pragma once

#include <filesystem>

#include "io/load_quantization.h"
#include "io/weight_store.h"

namespace zflow::io {

// `form` is Fp8 or Int8.
void write_comfy_quantized(const WeightStore& weights, const std::filesystem::path& out,
                           LoadQuantization form);

}  // namespace zflow::io
