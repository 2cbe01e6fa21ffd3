#include "pipeline/flux_kontext.h"

#include <array>
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "models/vae_tiling.h"
#include "pipeline/image_tensor.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {
namespace {

// (width, height) as BFL's Kontext release lists them (diffusers PREFERRED_KONTEXT_RESOLUTIONS).
constexpr std::array<std::pair<int, int>, 17> kKontextResolutions = {{
    {672, 1568},
    {688, 1504},
    {720, 1456},
    {752, 1392},
    {800, 1328},
    {832, 1248},
    {880, 1184},
    {944, 1104},
    {1024, 1024},
    {1104, 944},
    {1184, 880},
    {1248, 832},
    {1328, 800},
    {1392, 752},
    {1456, 720},
    {1504, 688},
    {1568, 672},
}};

}  // namespace

std::pair<int, int> kontext_resolution(int width, int height, int64_t multiple) {
  const int64_t w = width / multiple * multiple, h = height / multiple * multiple;
  ZF_CHECK(w > 0 && h > 0, "[flux] a {}x{} reference image is smaller than one {}-pixel token",
           width, height, multiple);
  // Python's aspect ratio and |difference| are doubles; min() compares (difference, w, h).
  const double aspect = static_cast<double>(w) / static_cast<double>(h);
  std::tuple<double, int, int> best{INFINITY, 0, 0};
  for (const auto& [rw, rh] : kKontextResolutions)
    best = std::min(best, {std::abs(aspect - static_cast<double>(rw) / rh), rw, rh});
  return {std::get<1>(best), std::get<2>(best)};
}

KontextReference kontext_reference(const models::AutoencoderKL& vae, const io::Image& image,
                                   bool vae_tiling) {
  const int64_t f = int64_t{1} << (vae.config().levels() - 1);
  const auto [width, height] = kontext_resolution(image.width, image.height, 2 * f);
  return kontext_tokens(vae, image, width, height, vae_tiling);
}

KontextReference kontext_tokens(const models::AutoencoderKL& vae, const io::Image& image,
                                int64_t width, int64_t height, bool vae_tiling) {
  const int64_t f = int64_t{1} << (vae.config().levels() - 1);
  const Tensor pixels = image_to_tensor(fit_image(image, width, height));
  const auto posterior = models::encode_image(vae, pixels, vae_tiling);
  KontextReference r{models::flux_pack_latents(vae.normalize_latent(posterior.mean)),
                     models::flux_image_ids(height / (2 * f), width / (2 * f))};
  for (models::FluxPosition& id : r.ids) id[0] = 1.0f;
  return r;
}

}  // namespace zflow::pipeline
