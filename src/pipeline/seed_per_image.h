// AUTOMATIC1111's batches: image k of a batch from its own seed + k (with a variation seed, the
// seed kept and the variation seed + k, as A1111 does), so any image of it is made again alone
// with its seeds. diffusers and ComfyUI draw a whole batch's
// noise from one generator instead, zflow's default. A request with
// GenerationRequest::seed_per_image runs as its images' one-image requests: in one batched run
// where they share forwards (as fast as a batch), else one after another (inpainting). The hires
// fix runs around it, so both its passes stay batched. Images may have prompts of their own
// (GenerationRequest::image_prompts).
#pragma once

#include <memory>

#include "pipeline/generator.h"

namespace zflow::pipeline {

// Image k's request: batch 1, seed + k (or variation seed + k), image k's prompts where it has its
// own.
GenerationRequest image_request(const GenerationRequest& request, int k);

// A generator that runs requests with seed_per_image this way around `inner`; every other
// request passes through unchanged.
std::unique_ptr<ImageGenerator> with_seed_per_image(std::unique_ptr<ImageGenerator> inner);

}  // namespace zflow::pipeline
