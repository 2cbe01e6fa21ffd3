// Nearest-neighbour 2x upsampling of a contiguous float32 [B, C, H, W] tensor:
// out[2i + a][2j + b] = in[i][j] (torch's interpolate(scale_factor=2, mode="nearest")).
#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

Tensor upsample_nearest2x(const Tensor& x) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  Tensor y = Tensor::empty({x.size(0), x.size(1), 2 * h, 2 * w}, DType::F32);
  const float* in = x.data<float>();  // [planes * h, w]
  float* out = y.data<float>();       // [planes * h, 2, 2 * w]
  parallel_for(
      planes * h,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const float* src = in + r * w;
          float* dst = out + r * 4 * w;
          for (int64_t j = 0; j < w; ++j) dst[2 * j] = dst[2 * j + 1] = src[j];
          for (int64_t j = 0; j < 2 * w; ++j) dst[2 * w + j] = dst[j];
        }
      },
      64);
  return y;
}

}  // namespace zflow::cpu
