// Pillow's ImageFilter.GaussianBlur(radius) on 8-bit pictures, byte for byte (Pillow 13,
// libImaging/BoxBlur.c): three passes of an extended box blur along the rows, then three along the
// columns, the box's half-width chosen so the passes approximate a Gaussian of standard deviation
// `radius` (Gwosdek et al., SSVM 2011), its fractional part weighting the two outermost pixels;
// edges repeat the border pixel; 24-bit fixed point. diffusers' VaeImageProcessor.blur softens
// inpainting masks with it.
#pragma once

#include <cstdint>
#include <span>

#include "io/image.h"

namespace zflow::io {

// radius 0 returns the image unchanged; a negative or non-finite radius is an Error.
Image gaussian_blur(const Image& image, float radius);

// The same blur in place on a width x height picture of `channels` interleaved 8-bit channels,
// each blurred alike (as Pillow blurs every band of an RGBA or premultiplied RGBa picture).
void gaussian_blur_interleaved(std::span<uint8_t> pixels, int width, int height, int channels,
                               float radius);

}  // namespace zflow::io
