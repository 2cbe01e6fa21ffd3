// Softmax over the last dim: exp(x - max) / sum, the sum accumulated in float64.
#include <algorithm>
#include <cmath>

#include "backend/cpu/exp_shifted.h"
#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

Tensor softmax(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const int64_t d = x.size(-1);
  const int64_t rows = x.numel() / d;
  const float* in = x.data<float>();
  float* out = y.data<float>();
  parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const float* xi = in + r * d;
          float* yo = out + r * d;
          const float mx = row_max(xi, d);
          const double sum = exp_shifted(xi, yo, d, mx);
          const float inv = static_cast<float>(1.0 / sum);
          for (int64_t i = 0; i < d; ++i) yo[i] *= inv;
        }
      },
      std::max<int64_t>(1, 4096 / d));
  return y;
}

}  // namespace zflow::cpu
