// Inpainting only the masked area (diffusers' padding_mask_crop, AUTOMATIC1111's "Only masked"):
// the rectangle around the mask, widened by a padding and then to the output's aspect ratio, is
// cut out of the picture and the mask and brought to the output size; the pipeline inpaints that
// at full resolution; the result goes back into the whole picture through the mask. Each step is
// diffusers 0.42.1's VaeImageProcessor (get_crop_region, preprocess with crops_coords and
// resize_mode "fill", apply_overlay) with Pillow 13's arithmetic (Lanczos resizes, RGBa paste,
// alpha_composite), equal to it byte for byte.
#pragma once

#include <memory>

#include "io/image.h"
#include "pipeline/generator.h"

namespace zflow::pipeline {

struct CropBox {
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // [x1, x2) x [y1, y2) in the picture
  int width() const { return x2 - x1; }
  int height() const { return y2 - y1; }
  bool operator==(const CropBox&) const = default;
};

// get_crop_region: the columns and rows holding a non-zero mask pixel (grey as Pillow's "L"),
// `padding` more on each side within the picture, then widened (centred, pushed back inside)
// to width:height. A mask with no non-zero pixel is an Error.
CropBox mask_crop_box(const io::Image& mask, int width, int height, int padding);

// The picture (or mask) cut to `box` and resized to width x height keeping its aspect ratio,
// the rest filled with its stretched edge rows or columns (resize_mode "fill").
io::Image crop_and_fill(const io::Image& image, const CropBox& box, int width, int height);

// The picture (or mask) brought to width x height as `mode` says: Stretch, Pillow's Lanczos
// resize; Crop, resize_mode "crop"; Fill, resize_mode "fill" (crop_and_fill of the whole picture).
io::Image resize_to(const io::Image& image, int width, int height, ResizeMode mode);

// apply_overlay: `generated` resized to cover `box` (resize_mode "crop") and placed there on
// black, then the original picture composited over it wherever the mask is not white.
io::Image paste_through_mask(const io::Image& mask, const io::Image& original,
                             const io::Image& generated, const CropBox& box);

// A1111's create_binary_mask with mask_round (its default): the mask's grey above 128 white, the
// rest black, before it is inverted or blurred.
io::Image rounded_mask(const io::Image& mask);

// A1111's overlay after inpainting the whole picture (StableDiffusionProcessingImg2Img's
// mask_for_overlay = clip(2 * mask), then apply_overlay): the original composited over
// `generated` through the inverse of the mask's grey doubled, so it shows wholly wherever the mask
// is under half white, and what the mask keeps keeps its pixels exactly instead of coming back
// through the VAE. All three at one size.
io::Image overlay_original(const io::Image& mask, const io::Image& original,
                           const io::Image& generated);

// A generator that prepares init images and masks around `inner`: a resize mode other than
// Stretch brings them to the output size first (not with mask_crop_padding, whose cut-out is
// filled at the output's aspect ratio anyway, as A1111 ignores it there), then
// GenerationRequest::invert_mask inverts the mask and mask_blur softens it (io/image_blur.h), then
// a request with mask_crop_padding runs this way, and a masked content other than the original
// fills the masked area of the picture the model inpaints (pipeline/masked_content.h); every other
// request passes through unchanged.
std::unique_ptr<ImageGenerator> with_mask_preparation(std::unique_ptr<ImageGenerator> inner);

}  // namespace zflow::pipeline
