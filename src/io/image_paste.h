// Pillow's Image.crop and Image.paste (without a mask) on RGB images: rectangles moved between
// images, whatever falls outside the destination dropped, and (crop) whatever lies outside the
// source black.
#pragma once

#include "io/image.h"

namespace zflow::io {

// The width x height rectangle at (left, top) of `image`; parts outside it are black.
Image crop_image(const Image& image, int left, int top, int width, int height);

// `src` drawn into `dst` with its top-left corner at (left, top).
void paste_image(Image& dst, const Image& src, int left, int top);

}  // namespace zflow::io
