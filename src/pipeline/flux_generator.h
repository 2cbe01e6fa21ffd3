// FLUX.1 (dev and schnell) behind the family-agnostic ImageGenerator interface.
#pragma once

#include <memory>

#include "pipeline/generator.h"

namespace zflow::pipeline {

std::unique_ptr<ImageGenerator> load_flux_generator(const ModelFiles& files);

}  // namespace zflow::pipeline
