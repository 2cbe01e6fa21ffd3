// AUTOMATIC1111's hires fix (txt2img with enable_hr; stable-diffusion.cpp's --hires): the picture
// is made at the request's size, upscaled in pixels with Pillow's Lanczos (or nearest) filter, or
// by an upscaler model and then Lanczos (pipeline/upscale.h), to the hires size, and repainted
// there by the model's own img2img (diffusers' *Img2ImgPipeline) with the hires steps and strength,
// the same control images steering it when a ControlNet steered the first pass. With one of A1111's
// latent upscalers (pipeline/latent_upscale.h) the first pass's latents are resized instead and
// the second pass starts from them (Z-Image and FLUX.1). The second pass may run on another model
// (HiresFix::model: draft with Z-Image-Turbo, repaint with FLUX.1-dev), with its own prompt,
// sampler and guidance; Z-Image and FLUX.1 share their latent space, so latents pass between them.
// Image k of a batch is repainted with seed + k (or variation seed + k), as A1111 seeds the images
// of a batch; the second
// passes run as one batched run where the model can share their forwards (each image still the
// one it would be alone), else one after another. Models
// are trained near 1024², so this is how they make 2048² pictures that hold together.
#pragma once

#include <memory>
#include <utility>

#include "pipeline/generator.h"

namespace zflow::pipeline {

// The hires size for a first picture of width x height: the given width and height, or one of
// them with the other kept in proportion (A1111's hr_resize_x / hr_resize_y), or the size times
// the scale; rounded down to whole 16-pixel tokens. An Error when that leaves nothing.
std::pair<int, int> hires_size(const HiresFix& hires, int width, int height);

// A generator that runs requests with GenerationRequest::hires this way around `inner`; every
// other request passes through unchanged.
std::unique_ptr<ImageGenerator> with_hires_fix(std::unique_ptr<ImageGenerator> inner);

}  // namespace zflow::pipeline
