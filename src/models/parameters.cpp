#include "models/parameters.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace zflow::models {

namespace {

// SplitMix64: a fast, well-mixed stream; benchmark weights need speed, not statistics
// (a 6B-parameter model is generated in seconds rather than minutes).
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool is_norm_weight(const ParameterSpec& p) {
  return p.shape.size() == 1 && p.name.ends_with(".weight") &&
         p.name.find("norm") != std::string::npos;
}

// A block type applies to the matrices whose rows are whole blocks (as GGUF converters store
// them); the rest stay bf16. kChunk below is a whole number of blocks of every type.
DType stored_dtype(const ParameterSpec& p, DType dtype) {
  if (!dtype_is_quantized(dtype)) return dtype;
  const bool blocks = p.shape.size() == 2 && p.shape[1] % dtype_block_size(dtype) == 0;
  return blocks ? dtype : DType::BF16;
}

}  // namespace

Tensor ParameterBinder::operator()(const std::string& name, const Shape& shape) {
  specs_.push_back({name, shape});
  if (!store_) return {};
  Tensor t = store_->get(name);
  if (t.shape() != shape)
    fail("[load] {}: '{}' has shape {}, expected {}{}", store_->source_of(name), name,
         shape_str(t.shape()), shape_str(shape),
         config_summary_.empty() ? "" : " (" + config_summary_ + ")");
  return t;
}

io::WeightStore random_weights(const std::vector<ParameterSpec>& params, DType dtype, uint64_t seed,
                               Device device) {
  io::WeightStore store;
  for (size_t index = 0; index < params.size(); ++index) {
    const ParameterSpec& p = params[index];
    const DType type = stored_dtype(p, dtype);
    Tensor t = Tensor::empty(p.shape, type);
    const int64_t n = t.numel();
    float bound = 1.0f;
    if (p.shape.size() >= 2) {
      const double fan_in = static_cast<double>(std::max<int64_t>(1, n / p.shape[0]));
      bound = static_cast<float>(1.0 / std::sqrt(fan_in));
    }
    const bool constant = is_norm_weight(p) || p.name.ends_with(".bias");
    const float constant_value = is_norm_weight(p) ? 1.0f : 0.0f;
    constexpr int64_t kChunk = int64_t{1} << 16;
    parallel_for((n + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end) {
      std::vector<float> buf(kChunk);
      for (int64_t c = begin; c < end; ++c) {
        const int64_t count = std::min(kChunk, n - c * kChunk);
        if (constant) {
          std::fill_n(buf.begin(), count, constant_value);
        } else {
          // One stream per chunk, seeded from (seed, tensor, chunk); 24 random bits each.
          uint64_t state = seed ^ ((index + 1) * 0xD1B54A32D192ED03ull) ^
                           (static_cast<uint64_t>(c) * 0xBF58476D1CE4E5B9ull);
          for (int64_t i = 0; i < count; ++i) {
            const float u = static_cast<float>(splitmix64(state) >> 40) * 0x1.0p-24f;  // [0, 1)
            buf[i] = (2.0f * u - 1.0f) * bound;
          }
        }
        void* dst = static_cast<char*>(t.raw()) + dtype_nbytes(type, c * kChunk);
        if (dtype_is_quantized(type)) {
          quantize_blocks(type, buf.data(), dst, count);
        } else {
          from_f32(buf.data(), dst, type, static_cast<size_t>(count));
        }
      }
    });
    store.add(p.name, t.to(device), "<random>");
  }
  return store;
}

}  // namespace zflow::models
