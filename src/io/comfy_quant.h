// ComfyUI's per-layer quantisation settings, as its quantised single files carry them: a
// `<layer>.comfy_quant` tensor (UTF-8 JSON stored as uint8) next to the layer's weight, and/or
// the header metadata `_quantization_metadata` ({"layers": {"<layer>": {...}}}). A layer's
// settings are an object with a "format" string ({"format": "float8_e4m3fn"}, {"format":
// "int8_tensorwise", "convrot": true, "convrot_groupsize": 256}) or, as some converters write
// them, the format string alone.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "io/weight_store.h"

namespace zflow::io {

// The formats zflow reads: float8_e4m3fn, float8_e5m2 (io/fp8_weights.h) and int8_tensorwise
// (io/int8_weights.h).
bool comfy_format_is_read(const std::string& format);

// The "format" of a layer's settings; an Error naming the layer when there is none, or when
// it is not one comfy_format_is_read() accepts.
std::string comfy_quant_format(const nlohmann::json& settings, const std::string& layer,
                               const std::string& where);

// The settings of every layer the files' `_quantization_metadata` values list, each checked by
// comfy_quant_format. Invalid JSON is an Error naming `where`.
std::map<std::string, nlohmann::json> comfy_quant_metadata_layers(
    const std::vector<std::string>& quantization_metadata, const std::string& where);

// The settings in `<layer>.comfy_quant`, removed from the store; nullopt when it has none. Bytes
// that are not a 1-D uint8 tensor of JSON are an Error naming the key.
std::optional<nlohmann::json> take_comfy_quant(WeightStore& store, const std::string& layer);

}  // namespace zflow::io
