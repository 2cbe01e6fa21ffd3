// Pixels <-> the tensors a VAE reads and writes, value for value as diffusers' VaeImageProcessor
// (diffusers 0.42.1 image_processor.py) does it for the Z-Image and FLUX pipelines:
//   preprocess   uint8 v -> float32 v / 255 -> 2x - 1            ([1, 3, H, W], NCHW)
//   postprocess  x -> (x * 0.5 + 0.5).clamp(0, 1) -> numpy (y * 255).round() -> uint8
// numpy's round is round-half-to-even on the float32 product, not truncation and not half-up: a
// value of exactly 0.5/255 after the clamp gives 0, 1.5/255 gives 2.
// Every step is float32 with no fused multiply-add, as torch and numpy evaluate it.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "io/image.h"

namespace zflow::pipeline {

// One value of postprocess: a decoded sample in about [-1, 1] to its 8-bit pixel value.
uint8_t decoded_to_u8(float x);

// An RGB image as a [1, 3, H, W] float32 tensor in [-1, 1].
Tensor image_to_tensor(const io::Image& image);

// A decoded batch [B, 3, H, W] (float32, about [-1, 1]) as B RGB images.
std::vector<io::Image> tensor_to_images(const Tensor& images);

// Pillow's Image.convert("L") of one RGB pixel (ITU-R 601-2 luma in 16-bit fixed point,
// Pillow's Convert.c): (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
uint8_t pillow_luma(uint8_t r, uint8_t g, uint8_t b);

// The inpaint mask as ZImageInpaintPipeline prepares it, at latent resolution:
//   mask_processor.preprocess (grayscale via convert("L"), v / 255, binarize: < 0.5 -> 0, else 1;
//   white = repaint) then F.interpolate(mode="nearest") to [latent_h, latent_w].
// Returns [1, 1, latent_h, latent_w] float32 of 0s and 1s. The mask must already have the image's
// size (start_latents resizes it first, as diffusers does).
Tensor preprocess_mask(const io::Image& mask, int64_t latent_h, int64_t latent_w);

// A mask as FLUX.2 klein's inpainting pipeline takes it to the token grid: grey (Pillow's luma),
// binarised at full resolution (>= 0.5: 1), then torch's bilinear interpolation
// (align_corners=False, no antialias) to [1, 1, latent_h, latent_w], so token cells on an edge
// take fractions.
Tensor preprocess_mask_bilinear(const io::Image& mask, int64_t latent_h, int64_t latent_w);

// torch's nearest-neighbour source index (upsample_nearest, no scale_factor given) for output
// index `out` when resizing `in_size` -> `out_size`: min(floor(out * (float(in) / out_size)), in -
// 1).
int64_t torch_nearest_index(int64_t out, int64_t in_size, int64_t out_size);

}  // namespace zflow::pipeline
