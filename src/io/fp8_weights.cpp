#include "io/fp8_weights.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "io/comfy_quant.h"
#include "io/gguf_convert.h"

namespace zflow::io {

namespace {

constexpr float kE4M3Max = 448.0f;

// The dtype a ComfyUI format (comfy_quant_format: one zflow reads) is stored in.
DType stored_dtype(const std::string& format) {
  if (format == "float8_e4m3fn") return DType::F8_E4M3;
  if (format == "float8_e5m2") return DType::F8_E5M2;
  return DType::I8;
}

// The one value of a scale tensor (float32 in ComfyUI's files; any float type accepted).
float scalar_of(const WeightStore& store, const std::string& name) {
  const Tensor t = store.get(name);
  ZF_CHECK(t.numel() == 1 && dtype_is_float(t.dtype()) && !dtype_is_quantized(t.dtype()),
           "[load] {}: scale '{}' is {} {}, expected one float value", store.source_of(name), name,
           dtype_name(t.dtype()), shape_str(t.shape()));
  const float v = t.to_f32_vector()[0];
  ZF_CHECK(std::isfinite(v), "[load] {}: scale '{}' is {}", store.source_of(name), name, v);
  return v;
}

void remove_if_present(WeightStore& store, const std::string& name) {
  if (store.contains(name)) store.remove(name);
}

// Rounds a float32 to `dtype` and back: torch computing "in" bf16 / f16 rounds every result.
float round_to(float x, DType dtype) {
  switch (dtype) {
    case DType::BF16:
      return bf16_bits_to_f32(f32_to_bf16_bits(x));
    case DType::F16:
      return f16_bits_to_f32(f32_to_f16_bits(x));
    default:
      return x;
  }
}

}  // namespace

void resolve_fp8_weights(WeightStore& store,
                         const std::vector<std::string>& quantization_metadata) {
  comfy_quant_metadata_layers(quantization_metadata, store.description());  // formats we read
  int scaled = 0, plain = 0, widened = 0;
  for (const std::string& name : store.names()) {
    if (!store.contains(name)) continue;  // removed as a companion of an earlier weight
    Tensor t = store.get(name);
    if (!dtype_is_float8(t.dtype())) continue;
    const std::string where = store.source_of(name);
    if (name.ends_with(".weight")) {
      const std::string layer = name.substr(0, name.size() - 7);
      if (const auto settings = take_comfy_quant(store, layer)) {
        const std::string format = comfy_quant_format(*settings, layer, where);
        ZF_CHECK(stored_dtype(format) == t.dtype(),
                 "[load] {}: '{}' is stored as {} but its comfy_quant says '{}'", where, name,
                 dtype_name(t.dtype()), format);
      }
      const std::string new_scale = layer + ".weight_scale", old_scale = layer + ".scale_weight";
      ZF_CHECK(!(store.contains(new_scale) && store.contains(old_scale)),
               "[load] {}: layer '{}' has both '{}' and '{}'", where, layer, new_scale, old_scale);
      for (const std::string& key : {new_scale, old_scale}) {
        if (!store.contains(key)) continue;
        t = t.with_scale(scalar_of(store, key));
        store.remove(key);
        ++scaled;
      }
      remove_if_present(store, layer + ".input_scale");
      remove_if_present(store, layer + ".scale_input");
    }
    if (t.scale() == 1.0f) ++plain;
    if (t.ndim() != 2) {  // norms, biases, conv kernels: no op reads float8 there
      t = t.to(DType::F32);
      ++widened;
    }
    store.replace(name, t);
  }
  for (const std::string& name : store.names())
    if (name == "scaled_fp8" || name.ends_with(".scaled_fp8")) store.remove(name);
  if (scaled + plain > 0)
    log::info("[load] {}: {} float8 tensors ({} with a scale; {} not matrices, widened to F32)",
              store.description(), scaled + plain, scaled, widened);
}

Tensor quantize_fp8_e4m3(const Tensor& t) {
  const DType dtype = t.dtype();
  ZF_CHECK(dtype == DType::F32 || dtype == DType::BF16 || dtype == DType::F16,
           "[fp8] quantising needs an F32, BF16 or F16 tensor, got {} {}", dtype_name(dtype),
           shape_str(t.shape()));
  const Tensor src = t.to(Device::CPU).contiguous();
  const int64_t n = src.numel();
  const char* base = static_cast<const char*>(src.raw());
  const size_t esize = dtype_size(dtype);
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // Values widened to float32 are exact, so the absolute maximum is the stored one.
  std::vector<float> chunk_max(static_cast<size_t>(chunks), 0.0f);
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(kChunk);
    for (int64_t c = begin; c < end; ++c) {
      const int64_t count = std::min(kChunk, n - c * kChunk);
      to_f32(base + c * kChunk * esize, dtype, buf.data(), static_cast<size_t>(count));
      float m = 0.0f;
      for (int64_t i = 0; i < count; ++i) m = std::max(m, std::fabs(buf[i]));
      chunk_max[c] = m;
    }
  });
  const float amax = *std::max_element(chunk_max.begin(), chunk_max.end());
  // comfy-kitchen: scale = amax / 448 in the tensor's dtype, kept as float32; the weight times
  // (1 / scale) cast to the tensor's dtype, in the tensor's dtype; clamped; cast to e4m3.
  const float scale = amax > 0.0f ? round_to(amax / kE4M3Max, dtype) : 1.0f;
  const float inverse = round_to(1.0f / scale, dtype);
  Tensor q = Tensor::empty(src.shape(), DType::F8_E4M3);
  auto* out = static_cast<uint8_t*>(q.raw());
  parallel_for(chunks, [&](int64_t begin, int64_t end) {
    std::vector<float> buf(kChunk);
    for (int64_t c = begin; c < end; ++c) {
      const int64_t count = std::min(kChunk, n - c * kChunk);
      to_f32(base + c * kChunk * esize, dtype, buf.data(), static_cast<size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        const float v = std::clamp(round_to(buf[i] * inverse, dtype), -kE4M3Max, kE4M3Max);
        out[c * kChunk + i] = f32_to_f8e4m3_bits(v);
      }
    }
  });
  return q.with_scale(scale);
}

bool fp8_quantizes(const std::string& name, const Tensor& t) {
  const DType d = t.dtype();
  return (d == DType::F32 || d == DType::BF16 || d == DType::F16) && t.ndim() == 2 &&
         !keeps_float_type(name, t);
}

WeightStore quantize_picked_matrices(WeightStore store,
                                     const std::function<Tensor(const Tensor&)>& quantise,
                                     std::string_view tag, std::string_view what) {
  int count = 0;
  size_t before = 0, after = 0;
  for (const std::string& name : store.names()) {
    Tensor t = store.get(name);
    if (!fp8_quantizes(name, t)) continue;
    Tensor q = quantise(t);
    before += t.nbytes();
    after += q.nbytes();
    t = Tensor();  // with the store's reference replaced next, the original is released
    store.replace(name, std::move(q));
    ++count;
  }
  log::info("[{}] {}: {} matrices quantised to {}, {:.1f} MB -> {:.1f} MB", tag,
            store.description(), count, what, before / 1e6, after / 1e6);
  return store;
}

WeightStore quantize_weights_fp8(WeightStore store) {
  return quantize_picked_matrices(std::move(store), quantize_fp8_e4m3, "fp8", "scaled e4m3");
}

}  // namespace zflow::io
