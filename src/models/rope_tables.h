// The cos and sin tables a rotary position embedding turns each head by (ops::rope).
#pragma once

#include "core/tensor.h"

namespace zflow::models {

struct RopeTables {
  Tensor cos, sin;  // [1, S, head_dim / 2] float32
};

}  // namespace zflow::models
