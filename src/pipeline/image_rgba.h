// Pillow's RGBA arithmetic as diffusers and A1111 composite pictures through masks (Pillow 13,
// libImaging Paste.c, Convert.c and AlphaComposite.c), byte for byte: a picture pasted into a
// transparent premultiplied RGBa picture through the inverted mask, turned back to straight RGBA
// and alpha-composited over another.
#pragma once

#include <cstdint>
#include <vector>

#include "io/image.h"

namespace zflow::pipeline {

// Interleaved 8-bit RGBA; premultiplied (Pillow's "RGBa") where a function says so.
struct RgbaImage {
  int width = 0, height = 0;
  std::vector<uint8_t> px;
};

// convert("RGBA") of an RGB picture: alpha 255.
RgbaImage opaque(const io::Image& image);
// convert("RGB"): the alpha dropped, colours kept as they are.
io::Image drop_alpha(const RgbaImage& image);

// Image.new("RGBa") with paste(image.convert("RGBa"), mask=ImageOps.invert(mask.convert("L"))):
// premultiplied, alpha 255 - the mask's grey. The mask must have the picture's size.
RgbaImage paste_outside_mask(const io::Image& image, const io::Image& mask);

// convert("RGBA") of a premultiplied picture (rgba2rgbA): colours times 255 / alpha, truncated
// and clipped; alpha 0 and 255 leave them as they are.
void unpremultiply(RgbaImage& image);

// dst.alpha_composite(src): src over dst, both straight RGBA of one size.
void alpha_composite(RgbaImage& dst, const RgbaImage& src);

}  // namespace zflow::pipeline
