#include "io/image_blend.h"

#include "core/error.h"

namespace zflow::io {

Image blend_images(const Image& a, const Image& b, float alpha) {
  ZF_CHECK(a.width == b.width && a.height == b.height,
           "[image] cannot blend a {}x{} picture with a {}x{} one", a.width, a.height, b.width,
           b.height);
  ZF_CHECK(alpha >= 0.0f && alpha <= 1.0f, "[image] blend weight must be in [0, 1], got {}", alpha);
  Image out{a.width, a.height, std::vector<uint8_t>(a.rgb.size())};
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const int x = a.rgb[i], y = b.rgb[i];
    // Pillow computes in C float and casts to UINT8: a truncation, never past 0..255 here.
    out.rgb[i] = static_cast<uint8_t>(static_cast<float>(x) + alpha * static_cast<float>(y - x));
  }
  return out;
}

}  // namespace zflow::io
