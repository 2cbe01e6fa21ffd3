#include "pipeline/latent_space.h"

#include <fmt/format.h>

namespace zflow::pipeline {

LatentSpace latent_space_of(const models::AutoencoderKL& vae) {
  const models::AutoencoderKLConfig& c = vae.config();
  return {c.latent_channels, int64_t{1} << (c.levels() - 1), c.scaling_factor, c.shift_factor};
}

std::string describe(const LatentSpace& space) {
  return fmt::format("{} channels, {} pixels a cell, scaling {}, shift {}", space.channels,
                     space.cell, space.scaling_factor, space.shift_factor);
}

}  // namespace zflow::pipeline
