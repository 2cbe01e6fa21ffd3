// Pillow's Image.blend on 8-bit RGB images (libImaging/Blend.c): a + alpha * (b - a) per channel,
// in float, truncated towards zero to a byte. A1111's extras blend their second upscaler so.
#pragma once

#include "io/image.h"

namespace zflow::io {

// `a` and `b` of one size; alpha in [0, 1] (0 gives a, 1 gives b). Errors name what differs.
Image blend_images(const Image& a, const Image& b, float alpha);

}  // namespace zflow::io
