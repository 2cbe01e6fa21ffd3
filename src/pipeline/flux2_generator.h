// FLUX.2 klein behind the family-agnostic ImageGenerator interface.
#pragma once

#include <memory>

#include "pipeline/generator.h"

namespace zflow::pipeline {

std::unique_ptr<ImageGenerator> load_flux2_generator(const ModelFiles& files);

}  // namespace zflow::pipeline
