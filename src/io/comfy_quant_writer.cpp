#include "io/comfy_quant_writer.h"

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/fp8_weights.h"
#include "io/int8_weights.h"
#include "io/safetensors.h"

namespace zflow::io {

namespace {

Tensor json_bytes(const nlohmann::ordered_json& settings) {
  const std::string text = settings.dump();
  Tensor t = Tensor::empty({static_cast<int64_t>(text.size())}, DType::U8);
  std::copy(text.begin(), text.end(), static_cast<char*>(t.raw()));
  return t;
}

// A layer's weight scale as ComfyUI stores it: fp8's one value, int8's one per row ([out, 1]).
Tensor scale_of(const Tensor& q) {
  if (q.dtype() == DType::F8_E4M3) return Tensor::from_f32({}, std::vector<float>{q.scale()});
  const std::span<const float> rows = q.row_scales();
  return Tensor::from_f32({static_cast<int64_t>(rows.size()), 1}, rows);
}

}  // namespace

void write_comfy_quantized(const WeightStore& weights, const std::filesystem::path& out,
                           LoadQuantization form) {
  ZF_CHECK(form != LoadQuantization::None, "[convert] {}: no quantised form asked for",
           out.string());
  const bool fp8 = form == LoadQuantization::Fp8;
  std::vector<SafetensorsSource> sources;
  for (const std::string& name : weights.names()) {
    const Tensor t = weights.get(name);
    // A quantised input would lose its scales here (the store holds them beside the codes).
    ZF_CHECK(
        !dtype_is_quantized(t.dtype()) && !dtype_is_float8(t.dtype()) && t.dtype() != DType::I8,
        "[convert] {}: tensor '{}' is already quantised ({}); convert from the float model",
        weights.source_of(name), name, dtype_name(t.dtype()));
    if (!fp8_quantizes(name, t) || !name.ends_with(".weight")) {
      sources.push_back(
          {name, t.shape(), t.dtype(), [&weights, name] { return weights.get(name); }});
      continue;
    }
    const std::string layer = name.substr(0, name.size() - std::string(".weight").size());
    const int64_t group = fp8 ? 0 : int8_convrot_group(t);
    nlohmann::ordered_json settings = {{"format", fp8 ? "float8_e4m3fn" : "int8_tensorwise"}};
    if (group > 0) {
      settings["convrot"] = true;
      settings["convrot_groupsize"] = group;
    }
    // The weight is quantised when the writer reaches it; its scale, written next, comes from
    // the same quantisation.
    auto quantised = std::make_shared<Tensor>();
    sources.push_back({name, t.shape(), fp8 ? DType::F8_E4M3 : DType::I8,
                       [&weights, name, group, fp8, quantised] {
                         const Tensor w = weights.get(name);
                         *quantised = fp8 ? quantize_fp8_e4m3(w) : quantize_int8_rows(w, group);
                         return *quantised;  // the codes; the scale follows
                       }});
    const Shape scale_shape = fp8 ? Shape{} : Shape{t.size(0), 1};
    sources.push_back({layer + ".weight_scale", scale_shape, DType::F32, [quantised] {
                         const Tensor scale = scale_of(*quantised);
                         *quantised = Tensor();
                         return scale;
                       }});
    const Tensor settings_bytes = json_bytes(settings);
    sources.push_back({layer + ".comfy_quant", settings_bytes.shape(), DType::U8,
                       [settings_bytes] { return settings_bytes; }});
  }
  write_safetensors_streamed(out, sources);
}

}  // namespace zflow::io
