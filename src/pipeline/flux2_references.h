// FLUX.2's reference images as diffusers 0.42.1's Flux2KleinPipeline prepares them for editing
// (Flux2ImageProcessor): each must have both sides of at least 64 pixels and an aspect ratio of at
// most 8; one of more than 1024 x 1024 pixels is first Lanczos-resized to about that area
// (scale sqrt(1024^2 / (w h)), each side truncated, as Pillow's resize through diffusers'
// _resize_to_target_area); then it is centre-cropped to multiples of the latent token size (16
// pixels) (resize_mode "crop", which for FLUX.2 only crops). The inpainting pipeline's init
// image takes the same first step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>

#include "io/image.h"

namespace zflow::pipeline {

// Z-Image Omni prepares its condition images the same way with the same processor, except that
// an image past 1024 x 1024 pixels is resized to about the requested output's area when a size is
// given: `target_area`; `family` names the model in errors.
inline constexpr double kFlux2ReferenceArea = 1024.0 * 1024.0;

// The reference as the pipeline encodes it; `index` names it in errors.
io::Image flux2_reference_image(const io::Image& image, int64_t multiple, size_t index,
                                double target_area = kFlux2ReferenceArea,
                                std::string_view family = "flux2");
// Its checks and its width x height, without preparing the pixels.
std::pair<int, int> flux2_reference_size(const io::Image& image, int64_t multiple, size_t index,
                                         double target_area = kFlux2ReferenceArea,
                                         std::string_view family = "flux2");
// The first step alone: past 1024 x 1024 pixels, Lanczos to about target_area (what Omni's SigLIP
// reads, uncropped).
io::Image flux2_area_resized(const io::Image& image, double target_area = kFlux2ReferenceArea);

// The init image as Flux2KleinInpaintPipeline prepares it: past 1024 x 1024 pixels resized to
// about that area as a reference is, then Lanczos-resized (not cropped: resize_mode "default") to
// its sides rounded down to multiples of `multiple`, which become the output's size.
io::Image flux2_init_image(const io::Image& image, int64_t multiple);
// Its width x height, without preparing the pixels; an image smaller than one token is an error.
std::pair<int, int> flux2_init_size(const io::Image& image, int64_t multiple);

// Both sizes: width x height past the area step, rounded down to multiples of `multiple`.
std::pair<int, int> flux2_prepared_size(int width, int height, int64_t multiple);

}  // namespace zflow::pipeline
