#include "models/parameters.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/thread_pool.h"

namespace zflow::models {

namespace {

bool is_norm_weight(const ParameterSpec& p) {
  return p.shape.size() == 1 && p.name.ends_with(".weight") &&
         p.name.find("norm") != std::string::npos;
}

}  // namespace

io::WeightStore random_weights(const std::vector<ParameterSpec>& params, DType dtype,
                               uint64_t seed) {
  io::WeightStore store;
  for (size_t index = 0; index < params.size(); ++index) {
    const ParameterSpec& p = params[index];
    Tensor t = Tensor::empty(p.shape, dtype);
    const int64_t n = t.numel();
    const size_t elem = dtype_size(dtype);
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
          // One engine per chunk, seeded from (seed, tensor, chunk).
          std::mt19937_64 engine(seed ^ ((index + 1) * 0x9E3779B97F4A7C15ull) ^
                                 (static_cast<uint64_t>(c) * 0xBF58476D1CE4E5B9ull));
          std::uniform_real_distribution<float> dist(-bound, bound);
          for (int64_t i = 0; i < count; ++i) buf[i] = dist(engine);
        }
        from_f32(buf.data(), static_cast<char*>(t.raw()) + c * kChunk * elem, dtype,
                 static_cast<size_t>(count));
      }
    });
    store.add(p.name, std::move(t), "<random>");
  }
  return store;
}

}  // namespace zflow::models
