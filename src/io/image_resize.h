// Image resizing that gives the same bytes as Pillow's `Image.resize((w, h), resample=...)`
// on an 8-bit RGB ("RGB") or greyscale ("L") image, so an init image or mask resized here
// matches what diffusers' VaeImageProcessor feeds the VAE (it resizes with LANCZOS).
//
// Reproduces Pillow 13.0.0 (tools/golden/requirements.txt): src/libImaging/Resample.c
// (ImagingResample) and, for Nearest, the affine-scale path of Geometry.c
// (ImagingScaleAffine) that Image.resize takes for it:
//   - separable: two passes through an 8-bit intermediate, horizontal first unless the
//     height loses more than twice as many pixels as the width (then vertical first, as
//     Pillow 13 does); a pass is skipped when that side keeps its size, and an unchanged
//     size is a copy;
//   - per output pixel, a window of input pixels around the centre (x + 0.5) * in / out,
//     the filter's support widened by the reduction factor when shrinking, the weights
//     normalised to sum 1 and rounded to 22-bit fixed point; sums rounded and clipped;
//   - Nearest samples the input pixel under each output pixel's centre, stepping through
//     the source in doubles exactly as Pillow does.
// tests/io/test_image_resize.cpp checks every filter bit-exact against Pillow's output.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "io/image.h"

namespace zflow::io {

// Pillow's Image.Resampling filters (Bicubic is Keys' cubic with a = -0.5, Lanczos has
// 3 lobes).
enum class ResampleFilter { Nearest, Box, Bilinear, Hamming, Bicubic, Lanczos };

// "nearest", "box", "bilinear", "hamming", "bicubic", "lanczos": the names diffusers'
// VaeImageProcessor(resample=...) and Pillow use (diffusers' "linear" is bilinear).
std::string_view resample_filter_name(ResampleFilter filter);
// The filter a name above denotes, any case; an unknown name is an Error listing them.
ResampleFilter resample_filter_from_name(std::string_view name);

// `image` resized to width x height. Throws zflow::Error when the image is empty or
// malformed, or the target size is not positive or exceeds kMaxImageSide / kMaxImagePixels.
Image resize_image(const Image& image, int width, int height, ResampleFilter filter);

// Pillow's Image.resize((width, height), filter, box): the source rectangle box = (left, top,
// right, bottom) in pixel coordinates, which may be empty (a zero-height box at row y gives rows
// that blend the source rows around y: diffusers' resize_mode "fill" uses such strips) resized to
// width x height. Convolution filters only.
using Box = std::array<double, 4>;
Image resize_image_box(const Image& image, int width, int height, ResampleFilter filter,
                       const Box& box);

// The same on a greyscale plane (Pillow mode "L"): `grey` holds width * height bytes,
// row-major; returns new_width * new_height bytes.
std::vector<uint8_t> resize_grey(std::span<const uint8_t> grey, int width, int height,
                                 int new_width, int new_height, ResampleFilter filter);

}  // namespace zflow::io
