// What a FLUX.1 ControlNet (models/flux_controlnet.h) reads in a pipeline, as diffusers 0.42.1's
// FluxControlNetPipeline, FluxControlNetImg2ImgPipeline and FluxControlNetInpaintPipeline
// prepare it:
//   the control image, Lanczos-resized to the output size, then
//     InstantX / Shakker: VAE-encoded as a posterior sample drawn from the generator BEFORE the
//       start latents (one draw of the batch's shape), normalised, packed 2x2 (flux_control.h)
//     XLabs: its pixels in [-1, 1], no draw
//   the samples weigh `scale` on the steps i of N with start <= i / N and (i + 1) / N <= end
//   (control_guidance_start / end), nothing on the others
//   a Union ControlNet's mode: InstantX's and Shakker-Labs' table (facts/flux.md section 6)
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/rng.h"
#include "core/tensor.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "models/flux_controlnet.h"

namespace zflow::pipeline {

// The control for `batch` samples: packed latents [batch, tokens, 4C] or pixels [batch, 3, H, W].
Tensor flux_controlnet_input(const models::FluxControlNet& controlnet,
                             const models::AutoencoderKL& vae, Generator& generator,
                             const io::Image& control, int64_t width, int64_t height, int64_t batch,
                             bool vae_tiling);

// Whether step `step` of `steps` is inside the ControlNet's part of the schedule.
bool flux_controlnet_acts(int step, int steps, double start, double end);

// The Union mode of a name ("canny", "tile", "depth", "blur", "pose", "gray", "lq") or a number;
// nullopt for anything else.
std::optional<int> flux_union_mode(const std::string& name_or_number);
// "canny 0, tile 1, ..." for errors and help.
std::string flux_union_modes();

}  // namespace zflow::pipeline
