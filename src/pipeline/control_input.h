// One control image and how it steers: a ControlNet's input (Z-Image's reads one, a FLUX.1 one
// one or several, their samples adding up), or the map FLUX.1 Canny-dev / Depth-dev draw from.
#pragma once

#include <optional>

#include "io/image.h"

namespace zflow::pipeline {

struct ControlInput {
  io::Image image;
  std::optional<float> scale;        // the ControlNet's weight (Z-Image 0.75, FLUX.1 1)
  std::optional<double> start, end;  // FLUX.1: the part of the steps it acts on (0 and 1)
  std::optional<int> mode;           // a FLUX.1 Union ControlNet's
};

}  // namespace zflow::pipeline
