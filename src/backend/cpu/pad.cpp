// Zero padding of the last two dims of a contiguous float32 [B, C, H, W] tensor.
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom) {
  const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
  const int64_t oh = h + top + bottom, ow = w + left + right;
  Tensor y = Tensor::zeros({x.size(0), x.size(1), oh, ow}, DType::F32);
  const float* in = x.data<float>();  // [planes, h, w]
  float* out = y.data<float>();       // [planes, oh, ow]
  parallel_for(planes, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p)
      for (int64_t r = 0; r < h; ++r)
        std::memcpy(out + (p * oh + r + top) * ow + left, in + (p * h + r) * w,
                    static_cast<size_t>(w) * sizeof(float));
  });
  return y;
}

}  // namespace zflow::cpu
