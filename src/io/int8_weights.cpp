#include "io/int8_weights.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/hadamard.h"
#include "core/int8_rows.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "io/comfy_quant.h"
#include "io/fp8_weights.h"

namespace zflow::io {

namespace {

constexpr int64_t kDefaultGroup = 256;  // comfy-kitchen's convrot_groupsize default

// ConvRot's group from a layer's settings: 0 without "convrot".
int64_t hadamard_group_of(const nlohmann::json& settings, const std::string& layer,
                          const std::string& where) {
  if (!settings.is_object() || !settings.contains("convrot")) return 0;
  const nlohmann::json& on = settings["convrot"];
  ZF_CHECK(on.is_boolean(), "[load] {}: layer '{}' has \"convrot\": {}, expected true or false",
           where, layer, on.dump());
  if (!on.get<bool>()) return 0;
  if (!settings.contains("convrot_groupsize")) return kDefaultGroup;
  const nlohmann::json& g = settings["convrot_groupsize"];
  ZF_CHECK(g.is_number_integer() && is_hadamard_group(g.get<int64_t>()),
           "[load] {}: layer '{}' has \"convrot_groupsize\": {}, expected a power of four (4, "
           "16, 64, 256, ...)",
           where, layer, g.dump());
  return g.get<int64_t>();
}

// The weight's scales, one per row: a single value repeated, or one per row as stored.
std::vector<float> row_scales_of(const WeightStore& store, const std::string& key, int64_t rows) {
  const Tensor t = store.get(key);
  const std::string& where = store.source_of(key);
  const bool one = t.numel() == 1;
  const bool per_row = t.numel() == rows && (t.ndim() == 1 || (t.ndim() == 2 && t.size(1) == 1));
  ZF_CHECK(dtype_is_float(t.dtype()) && !dtype_is_quantized(t.dtype()) && (one || per_row),
           "[load] {}: scale '{}' is {} {}, expected one float or one per row ({} or [{}, 1])",
           where, key, dtype_name(t.dtype()), shape_str(t.shape()), rows, rows);
  std::vector<float> v = t.to_f32_vector();
  for (float s : v)
    ZF_CHECK(std::isfinite(s), "[load] {}: scale '{}' holds {}, expected finite values", where, key,
             s);
  if (one) v.assign(static_cast<size_t>(rows), v[0]);
  return v;
}

}  // namespace

void resolve_int8_weights(WeightStore& store,
                          const std::vector<std::string>& quantization_metadata) {
  const auto listed = comfy_quant_metadata_layers(quantization_metadata, store.description());
  int layers = 0, rotated = 0;
  for (const std::string& name : store.names()) {
    if (!name.ends_with(".weight") || store.get(name).dtype() != DType::I8) continue;
    const std::string layer = name.substr(0, name.size() - 7), where = store.source_of(name);
    std::optional<nlohmann::json> settings = take_comfy_quant(store, layer);
    if (!settings) {
      const auto it = listed.find(layer);
      ZF_CHECK(it != listed.end(),
               "[load] {}: '{}' is I8 but neither '{}.comfy_quant' nor _quantization_metadata "
               "says how it was quantised (expected int8_tensorwise)",
               where, name, layer);
      settings = it->second;
    }
    const std::string format = comfy_quant_format(*settings, layer, where);
    ZF_CHECK(format == "int8_tensorwise",
             "[load] {}: '{}' is stored as I8 but is quantised as '{}'", where, name, format);
    const Tensor w = store.get(name);
    ZF_CHECK(w.ndim() == 2, "[load] {}: int8 weight '{}' has shape {}, expected a matrix", where,
             name, shape_str(w.shape()));
    const std::string scale_key = layer + ".weight_scale";
    ZF_CHECK(store.contains(scale_key), "[load] {}: int8 weight '{}' has no '{}'", where, name,
             scale_key);
    const int64_t group = hadamard_group_of(*settings, layer, where);
    ZF_CHECK(group == 0 || w.size(1) % group == 0,
             "[load] {}: '{}' has rows of {} values, which ConvRot groups of {} do not divide",
             where, name, w.size(1), group);
    store.replace(name, w.with_row_scales(row_scales_of(store, scale_key, w.size(0)), group));
    store.remove(scale_key);
    if (store.contains(layer + ".input_scale")) store.remove(layer + ".input_scale");
    ++layers;
    if (group > 0) ++rotated;
  }
  if (layers > 0)
    log::info("[load] {}: {} int8 weights ({} rotated by ConvRot)", store.description(), layers,
              rotated);
}

Tensor quantize_int8_rows(const Tensor& w, int64_t hadamard_group) {
  ZF_CHECK(w.ndim() == 2 && dtype_is_float(w.dtype()) && !dtype_is_quantized(w.dtype()),
           "[int8] quantising needs a float matrix, got {} {}", dtype_name(w.dtype()),
           shape_str(w.shape()));
  ZF_CHECK(
      hadamard_group == 0 || (is_hadamard_group(hadamard_group) && w.size(1) % hadamard_group == 0),
      "[int8] a ConvRot group of {} does not divide rows of {} values", hadamard_group, w.size(1));
  const Tensor values = w.to(Device::CPU).to(DType::F32).contiguous();
  const int64_t rows = w.size(0), cols = w.size(1);
  Tensor q = Tensor::empty({rows, cols}, DType::I8);
  std::vector<float> scales(static_cast<size_t>(rows));
  parallel_for(rows, [&](int64_t begin, int64_t end) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = begin; r < end; ++r) {
      std::copy_n(values.data<float>() + r * cols, cols, row.begin());
      if (hadamard_group > 0) rotate_hadamard_groups(row.data(), cols, hadamard_group);
      scales[r] = int8_row_scale(row.data(), cols);
      quantize_int8_row(row.data(), cols, scales[r], static_cast<int8_t*>(q.raw()) + r * cols);
    }
  });
  return q.with_row_scales(std::move(scales), hadamard_group);
}

int64_t int8_convrot_group(const Tensor& w) {
  constexpr int64_t kGroup = 256;  // the published files' convrot_groupsize
  return w.size(1) % kGroup == 0 ? kGroup : 0;
}

WeightStore quantize_weights_int8(WeightStore store) {
  return quantize_picked_matrices(
      std::move(store),
      [](const Tensor& t) { return quantize_int8_rows(t, int8_convrot_group(t)); }, "int8",
      "int8 with row scales");
}

}  // namespace zflow::io
