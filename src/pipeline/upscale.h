// Upscaling pictures with an upscaler model (models/upscaler.h) the way the tools users know run
// it:
//   - ComfyUI's "Upscale Image (using Model)" (comfy.utils.tiled_scale): the picture is cut into
//     tiles of 512 pixels starting every 512 - 32, the last ones shorter; each tile's output is
//     weighted by a mask that ramps from 1/(32 s) to 1 over the 32 s pixels at every edge (s the
//     model's scale), and the weighted sums are divided by the summed weights. A picture within one
//     tile is run whole. Memory stays that of one tile, whatever the picture's size.
//   - A1111's upscalers (hires fix, extras): the model is applied (at most three times) until the
//     picture covers the wanted size, which Lanczos then gives exactly.
#pragma once

#include "core/tensor.h"
#include "io/image.h"
#include "models/upscaler.h"

namespace zflow::pipeline {

// ComfyUI's tiles (ImageUpscaleWithModel's defaults), in input pixels.
struct UpscaleTiling {
  int tile = 512;
  int overlap = 32;
};

// image [B, C, H, W] (RGB in [0, 1], float32 on the CPU) upscaled tile by tile as ComfyUI does;
// float32, not clamped.
Tensor upscale_tiled(const models::Upscaler& model, const Tensor& image,
                     const UpscaleTiling& tiling = {});

// One pass of the model over an 8-bit picture: v / 255 in, clamp(0, 1) * 255 rounded half to even
// out (A1111's and spandrel's conversion).
io::Image upscale_image(const models::Upscaler& model, const io::Image& image,
                        const UpscaleTiling& tiling = {});

// A1111's Upscaler.upscale: passes of the model (at most three, stopping early when one no longer
// grows it) until the picture is at least width x height, then Pillow's Lanczos to exactly that.
io::Image upscale_image_to(const models::Upscaler& model, const io::Image& image, int width,
                           int height, const UpscaleTiling& tiling = {});

}  // namespace zflow::pipeline
