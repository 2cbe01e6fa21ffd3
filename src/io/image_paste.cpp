#include "io/image_paste.h"

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace zflow::io {

void paste_image(Image& dst, const Image& src, int left, int top) {
  const int from = std::max(0, -left), to = std::min(src.width, dst.width - left);
  if (to <= from) return;
  for (int row = std::max(0, -top); row < src.height && top + row < dst.height; ++row)
    std::copy_n(src.rgb.begin() + (static_cast<size_t>(row) * src.width + from) * 3,
                static_cast<size_t>(to - from) * 3,
                dst.rgb.begin() + (static_cast<size_t>(top + row) * dst.width + left + from) * 3);
}

Image crop_image(const Image& image, int left, int top, int width, int height) {
  ZF_CHECK(width > 0 && height > 0, "[image] crop of {}x{}: the size must be positive", width,
           height);
  Image out{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3, 0)};
  paste_image(out, image, -left, -top);
  return out;
}

}  // namespace zflow::io
