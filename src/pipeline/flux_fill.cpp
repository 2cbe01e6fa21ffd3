#include "pipeline/flux_fill.h"

#include "backend/ops.h"
#include "core/error.h"
#include "models/flux_dit.h"
#include "models/vae_tiling.h"
#include "pipeline/flow_euler.h"
#include "pipeline/image_tensor.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {
namespace {

int64_t pixels_per_cell(const models::AutoencoderKL& vae) {
  return int64_t{1} << (vae.config().levels() - 1);
}

// [1, 1, H, W] -> [1, f^2, H / f, W / f]: cell (y, x), channel dy * f + dx holds pixel
// (y f + dy, x f + dx) (diffusers' view(h, f, w, f).permute(f, f, h, w)).
Tensor fold_mask(const Tensor& mask, int64_t f) {
  const int64_t height = mask.size(2), width = mask.size(3);
  const int64_t h = height / f, w = width / f;
  Tensor folded = Tensor::empty({1, f * f, h, w}, DType::F32);
  const float* src = mask.data<float>();
  float* dst = folded.data<float>();
  for (int64_t dy = 0; dy < f; ++dy)
    for (int64_t dx = 0; dx < f; ++dx)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          dst[((dy * f + dx) * h + y) * w + x] = src[(y * f + dy) * width + x * f + dx];
  return folded;
}

}  // namespace

int64_t flux_fill_in_channels(const models::AutoencoderKL& vae) {
  const int64_t f = pixels_per_cell(vae);
  return 8 * vae.config().latent_channels + 4 * f * f;
}

Tensor flux_fill_condition(const models::AutoencoderKL& vae, Generator& generator,
                           const io::Image& init, const io::Image& mask, int64_t width,
                           int64_t height, int64_t batch, bool vae_tiling) {
  const int64_t f = pixels_per_cell(vae);
  ZF_CHECK(width % (2 * f) == 0 && height % (2 * f) == 0 && batch >= 1,
           "[flux] Fill condition for a {}x{} image: sides must be multiples of {}", width, height,
           2 * f);
  Tensor picture = image_to_tensor(fit_image(init, width, height));  // [1, 3, H, W]
  const Tensor keep = preprocess_mask(fit_image(mask, width, height), height, width);
  const float* m = keep.data<float>();  // 1: repaint
  float* p = picture.data<float>();
  const int64_t plane = width * height;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < plane; ++i) p[c * plane + i] *= 1.0f - m[i];

  const auto posterior = models::encode_image(vae, picture, vae_tiling);
  const Tensor masked_latents = repeat_batch(
      vae.normalize_latent(models::AutoencoderKL::sample(posterior, generator)), batch);
  const Tensor folded = repeat_batch(fold_mask(keep, f), batch);
  return ops::concat({models::flux_pack_latents(masked_latents), models::flux_pack_latents(folded)},
                     2);
}

}  // namespace zflow::pipeline
