#include "io/comfy_quant.h"

#include "core/error.h"

namespace zflow::io {

namespace {

nlohmann::json parse_json(const std::string& text, const std::string& what,
                          const std::string& where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("[load] {}: {} is not valid JSON: {}", where, what, e.what());
  }
}

}  // namespace

bool comfy_format_is_read(const std::string& format) {
  return format == "float8_e4m3fn" || format == "float8_e5m2" || format == "int8_tensorwise";
}

std::string comfy_quant_format(const nlohmann::json& settings, const std::string& layer,
                               const std::string& where) {
  std::string format;
  if (settings.is_string()) {
    format = settings.get<std::string>();
  } else if (settings.is_object() && settings.contains("format") &&
             settings["format"].is_string()) {
    format = settings["format"].get<std::string>();
  } else {
    fail("[load] {}: layer '{}' has quantisation settings {} without a \"format\" string", where,
         layer, settings.dump());
  }
  ZF_CHECK(comfy_format_is_read(format),
           "[load] {}: layer '{}' is quantised as '{}'; zflow reads float8_e4m3fn, float8_e5m2 "
           "and int8_tensorwise, not this one",
           where, layer, format);
  return format;
}

std::map<std::string, nlohmann::json> comfy_quant_metadata_layers(
    const std::vector<std::string>& quantization_metadata, const std::string& where) {
  std::map<std::string, nlohmann::json> out;
  for (const std::string& text : quantization_metadata) {
    const nlohmann::json doc = parse_json(text, "_quantization_metadata", where);
    if (!doc.is_object() || !doc.contains("layers")) continue;
    const nlohmann::json& layers = doc["layers"];
    ZF_CHECK(layers.is_object(), "[load] {}: _quantization_metadata 'layers' is not an object",
             where);
    for (const auto& [layer, settings] : layers.items()) {
      comfy_quant_format(settings, layer, where);
      out[layer] = settings;
    }
  }
  return out;
}

std::optional<nlohmann::json> take_comfy_quant(WeightStore& store, const std::string& layer) {
  const std::string key = layer + ".comfy_quant";
  if (!store.contains(key)) return std::nullopt;
  const std::string where = store.source_of(key);
  const Tensor bytes = store.get(key).contiguous();
  ZF_CHECK(bytes.dtype() == DType::U8 && bytes.ndim() == 1,
           "[load] {}: '{}' is {} {}, expected uint8 JSON bytes", where, key,
           dtype_name(bytes.dtype()), shape_str(bytes.shape()));
  const std::string text(static_cast<const char*>(bytes.raw()), static_cast<size_t>(bytes.numel()));
  store.remove(key);
  return parse_json(text, "'" + key + "'", where);
}

}  // namespace zflow::io
