#include "models/zimage_tokens.h"

#include "core/error.h"

namespace zflow::models {

Tensor zimage_patchify(const Tensor& latents_in, int64_t p, int64_t length) {
  const Tensor latents = latents_in.contiguous();
  const int64_t b = latents.size(0), c = latents.size(1), h = latents.size(2), w = latents.size(3);
  const int64_t ht = h / p, wt = w / p, features = p * p * c;
  ZF_CHECK(ht * wt <= length, "[zimage] patchify: {} tokens do not fit {}", ht * wt, length);
  Tensor tokens = Tensor::zeros({b, length, features}, DType::F32);
  const float* src = latents.data<float>();
  float* dst = tokens.data<float>();
  for (int64_t i = 0; i < b; ++i)
    for (int64_t y = 0; y < ht; ++y)
      for (int64_t x = 0; x < wt; ++x) {
        float* token = dst + (i * length + y * wt + x) * features;
        for (int64_t py = 0; py < p; ++py)
          for (int64_t px = 0; px < p; ++px)
            for (int64_t ch = 0; ch < c; ++ch)
              token[(py * p + px) * c + ch] = src[((i * c + ch) * h + y * p + py) * w + x * p + px];
      }
  return tokens;
}

Tensor zimage_unpatchify(const Tensor& tokens_in, int64_t c, int64_t h, int64_t w, int64_t p) {
  const Tensor tokens = tokens_in.contiguous();
  const int64_t b = tokens.size(0), length = tokens.size(1), features = p * p * c;
  const int64_t ht = h / p, wt = w / p;
  ZF_CHECK(tokens.size(2) == features && ht * wt <= length,
           "[zimage] unpatchify: tokens {} cannot hold a {}x{} latent of {} channels",
           shape_str(tokens.shape()), h, w, c);
  Tensor out = Tensor::empty({b, c, h, w}, DType::F32);
  const float* src = tokens.data<float>();
  float* dst = out.data<float>();
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

}  // namespace zflow::models
