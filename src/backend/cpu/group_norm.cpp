// GroupNorm over a contiguous float32 [B, C, ...] tensor: per (batch, group) mean and
// biased variance, then y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], with an
// optional SiLU on y. The statistics are two-pass sums in float64: a group can hold
// millions of values (4 channels x 1024 x 1024), where float32 running sums drift.
#include <algorithm>
#include <cmath>

#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  bool fuse_silu) {
  const int64_t batch = x.size(0), channels = x.size(1);
  const int64_t spatial = channels == 0 || batch == 0 ? 0 : x.numel() / (batch * channels);
  const int64_t per_group = channels / groups;
  const int64_t group_size = per_group * spatial;
  const std::vector<float> g = widen(gamma), b = widen(beta);

  // mean and 1/std per (batch, group)
  std::vector<double> mean(static_cast<size_t>(batch * groups));
  std::vector<double> rstd(mean.size());
  const float* in = x.data<float>();  // [batch * groups, group_size]
  parallel_for(batch * groups, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const float* p = in + i * group_size;
      double sum = 0.0;
      for (int64_t j = 0; j < group_size; ++j) sum += p[j];
      const double m = group_size > 0 ? sum / static_cast<double>(group_size) : 0.0;
      double sq = 0.0;
      for (int64_t j = 0; j < group_size; ++j) {
        const double d = p[j] - m;
        sq += d * d;
      }
      const double var = group_size > 0 ? sq / static_cast<double>(group_size) : 0.0;
      mean[i] = m;
      rstd[i] = 1.0 / std::sqrt(var + static_cast<double>(eps));
    }
  });

  Tensor y = Tensor::empty(x.shape(), DType::F32);
  float* out = y.data<float>();  // [batch, channels, spatial]
  parallel_for(
      batch * channels,
      [&](int64_t begin, int64_t end) {
        for (int64_t plane = begin; plane < end; ++plane) {
          const int64_t c = plane % channels;
          const int64_t stat = (plane / channels) * groups + c / per_group;
          // y = x * scale + shift, the per-channel affine folded into the normalisation
          const double s = rstd[stat] * (g.empty() ? 1.0 : g[c]);
          const float scale = static_cast<float>(s);
          const float shift = static_cast<float>((b.empty() ? 0.0 : b[c]) - mean[stat] * s);
          const float* p = in + plane * spatial;
          float* q = out + plane * spatial;
          if (fuse_silu) {
            for (int64_t j = 0; j < spatial; ++j) {
              const float v = p[j] * scale + shift;
              q[j] = v / (1.0f + std::exp(-v));
            }
          } else {
            for (int64_t j = 0; j < spatial; ++j) q[j] = p[j] * scale + shift;
          }
        }
      },
      std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(spatial, 1)));
  return y;
}

}  // namespace zflow::cpu
