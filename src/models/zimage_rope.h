// Z-Image's 3-axis rotary position embedding (diffusers RopeEmbedder): a token's position is
// (axis0, row, column); the head dim is split into per-axis runs of axes_dims[a] features
// (16 + 24 + 24 complex pairs for the release) and pair j of axis a turns by
// pos_a * omega_{a,j}, omega_{a,j} = 1 / theta^(2j / axes_dims[a]). As diffusers does, the
// frequencies are float64 and each angle is rounded to float32 before cos and sin.
// The pairs are interleaved (2j, 2j+1): ops::rope with RopeLayout::kInterleaved.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace zflow::models {

using ZImagePosition = std::array<int64_t, 3>;

class ZImageRope {
 public:
  ZImageRope(std::vector<int64_t> axes_dims, std::vector<int64_t> axes_lens, double theta);

  // cos and sin [B, length, head_dim / 2] for positions[b] (one list per sample, each at most
  // `length` long). Rows past a sample's list are 0, as in diffusers' zero-padded batch
  // table; those rows are batch padding that no valid token attends to. A position outside
  // [0, axes_lens[a]) is an Error (diffusers' table would index out of range).
  struct Tables {
    Tensor cos, sin;
  };
  Tables tables(const std::vector<std::vector<ZImagePosition>>& positions, int64_t length) const;

  int64_t head_dim() const { return head_dim_; }

 private:
  std::vector<int64_t> axes_dims_, axes_lens_;
  std::vector<std::vector<double>> omega_;  // per axis, axes_dims[a] / 2 frequencies
  int64_t head_dim_ = 0;
};

}  // namespace zflow::models
