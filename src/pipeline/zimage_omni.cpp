#include "pipeline/zimage_omni.h"

#include "core/error.h"
#include "models/vae_tiling.h"
#include "pipeline/flux2_references.h"
#include "pipeline/image_tensor.h"

namespace zflow::pipeline {

namespace {

constexpr const char* kFamily = "zimage";

// Past 1024 x 1024 pixels an image goes to the requested output's area, else to about that.
double target_area(std::optional<int> width, std::optional<int> height) {
  return width && height ? static_cast<double>(*width) * *height : kFlux2ReferenceArea;
}

}  // namespace

std::pair<int, int> zimage_omni_size(const std::vector<io::Image>& images, std::optional<int> width,
                                     std::optional<int> height, int64_t multiple) {
  std::pair<int, int> last{1024, 1024};
  for (size_t i = 0; i < images.size(); ++i)
    last = flux2_reference_size(images[i], multiple, i, target_area(width, height), kFamily);
  const int w = width.value_or(last.first), h = height.value_or(last.second);
  ZF_CHECK(w > 0 && h > 0 && w % multiple == 0 && h % multiple == 0,
           "[zimage] size {}x{}: width and height must be positive multiples of {}", w, h,
           multiple);
  return {w, h};
}

std::vector<models::ZImageOmniCondition> zimage_omni_conditions(
    const std::vector<io::Image>& images, std::optional<int> width, std::optional<int> height,
    const models::AutoencoderKL& vae, const models::Siglip2VisionModel* siglip,
    const models::Siglip2ProcessorConfig& processor, bool vae_tiling) {
  const int64_t multiple = 2 * (int64_t{1} << (vae.config().levels() - 1));
  const double area = target_area(width, height);
  std::vector<models::ZImageOmniCondition> conditions;
  for (size_t i = 0; i < images.size(); ++i) {
    const io::Image crop = flux2_reference_image(images[i], multiple, i, area, kFamily);
    const Tensor pixels = image_to_tensor(crop).to(DType::BF16).to(DType::F32);
    const Tensor latents = vae.normalize_latent(models::encode_image(vae, pixels, vae_tiling).mean);
    models::ZImageOmniCondition c{latents.view({latents.size(1), latents.size(2), latents.size(3)}),
                                  {}};
    if (siglip) {
      const models::Siglip2Patches patches =
          models::siglip2_patches(flux2_area_resized(images[i], area), processor);
      c.siglip = siglip->encode(patches).view({patches.rows, patches.cols, -1});
    }
    conditions.push_back(std::move(c));
  }
  return conditions;
}

}  // namespace zflow::pipeline
