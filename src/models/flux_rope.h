// The rotary position tables of the FLUX transformers (diffusers FluxPosEmbed and Flux2PosEmbed):
// every token has an integer position per axis (FLUX.1: 3 axes, FLUX.2: 4), and axis a turns
// axes_dims[a] / 2 adjacent pairs of each head by pos_a * theta^(-2j / axes_dims[a]),
// j = 0..axes_dims[a]/2 - 1, the axes' runs concatenated in axis order. Angles, cos and sin are
// computed in float64 as diffusers does, then rounded to float32.
#pragma once

#include <cstdint>
#include <span>

#include "core/tensor.h"
#include "models/rope_tables.h"

namespace zflow::models {

// Tables [1, S, sum(axes_dims) / 2]. `positions` holds S tokens' positions, axes_dims.size() values
// each, token after token. The tables are made on the CPU and put on `device`.
RopeTables flux_rope_tables(std::span<const float> positions, std::span<const int64_t> axes_dims,
                            double theta, Device device);

}  // namespace zflow::models
