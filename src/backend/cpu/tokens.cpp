// Token layout kernels (ops.h: patchify, unpatchify, fill_rows): plain copies, memory bound
// and small next to the GEMMs around them.
#include <algorithm>
#include <cstring>

#include "backend/cpu/kernels.h"

namespace zflow::cpu {

Tensor patchify(const Tensor& x, int64_t p, int64_t length) {
  const int64_t b = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t ht = h / p, wt = w / p, features = p * p * c;
  Tensor tokens = Tensor::zeros({b, length, features}, DType::F32);
  const float* src = x.data<float>();  // [B, C, H, W]
  float* dst = tokens.data<float>();   // [B, length, p, p, C]
  for (int64_t i = 0; i < b; ++i)
    for (int64_t y = 0; y < ht; ++y)
      for (int64_t xx = 0; xx < wt; ++xx) {
        float* token = dst + (i * length + y * wt + xx) * features;
        for (int64_t py = 0; py < p; ++py)
          for (int64_t px = 0; px < p; ++px)
            for (int64_t ch = 0; ch < c; ++ch)
              token[(py * p + px) * c + ch] =
                  src[((i * c + ch) * h + y * p + py) * w + xx * p + px];
      }
  return tokens;
}

Tensor unpatchify(const Tensor& tokens, int64_t c, int64_t h, int64_t w, int64_t p) {
  const int64_t b = tokens.size(0), length = tokens.size(1), features = p * p * c;
  const int64_t ht = h / p, wt = w / p;
  Tensor out = Tensor::empty({b, c, h, w}, DType::F32);
  const float* src = tokens.data<float>();  // [B, length, p, p, C]
  float* dst = out.data<float>();           // [B, C, H, W]
  for (int64_t i = 0; i < b; ++i)
    for (int64_t y = 0; y < ht; ++y)
      for (int64_t x = 0; x < wt; ++x) {
        const float* token = src + (i * length + y * wt + x) * features;
        for (int64_t py = 0; py < p; ++py)
          for (int64_t px = 0; px < p; ++px)
            for (int64_t ch = 0; ch < c; ++ch)
              dst[((i * c + ch) * h + y * p + py) * w + x * p + px] = token[(py * p + px) * c + ch];
      }
  return out;
}

Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end) {
  const int64_t b = x.size(0), length = x.size(1), d = x.size(2);
  Tensor y = x.clone();
  float* dst = y.data<float>();                                      // [B, L, D]
  const float* value = row.defined() ? row.data<float>() : nullptr;  // [D] or none
  for (int64_t i = 0; i < b; ++i)
    for (int64_t r = begin[static_cast<size_t>(i)]; r < end[static_cast<size_t>(i)]; ++r) {
      float* out = dst + (i * length + r) * d;
      if (value)
        std::memcpy(out, value, static_cast<size_t>(d) * sizeof(float));
      else
        std::fill_n(out, d, 0.0f);
    }
  return y;
}

}  // namespace zflow::cpu
