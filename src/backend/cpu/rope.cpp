// Rotary position embedding: each pair (x1, x2) of a head's features, a complex number
// x1 + i x2, is multiplied by e^{i angle}, angle given per (batch, position, pair) by
// the caller's cos and sin tables. Optionally each head is RMS-normalised first (QK-norm),
// computed exactly as rms_norm would, so the fused op equals the composition bit for bit.
#include <optional>
#include <vector>

#include "backend/cpu/kernels.h"
#include "backend/cpu/row_norms.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

struct HeadNorm {
  std::vector<float> weight;  // empty: no affine
  float eps;
};

Tensor rotate(const Tensor& x, const std::optional<HeadNorm>& norm, const Tensor& cos,
              const Tensor& sin, ops::RopeLayout layout) {
  const int64_t batch = x.size(0), len = x.size(1), heads = x.size(2), d = x.size(3);
  const int64_t pairs = d / 2;
  // Pair j reads features (first(j), first(j) + step).
  const bool interleaved = layout == ops::RopeLayout::kInterleaved;
  const int64_t step = interleaved ? 1 : pairs;
  Tensor y = Tensor::empty(x.shape(), DType::F32);
  const float* in = x.data<float>();    // [batch, len, heads, d]
  const float* pc = cos.data<float>();  // [batch or 1, len, pairs]
  const float* ps = sin.data<float>();
  float* out = y.data<float>();
  const bool per_batch_table = cos.size(0) != 1;
  parallel_for(batch * len, [&](int64_t begin, int64_t end) {
    std::vector<float> normed(static_cast<size_t>(norm ? d : 0));
    for (int64_t bl = begin; bl < end; ++bl) {
      const int64_t table_row = per_batch_table ? bl : bl % len;
      const float* c = pc + table_row * pairs;
      const float* s = ps + table_row * pairs;
      for (int64_t h = 0; h < heads; ++h) {
        const float* xi = in + (bl * heads + h) * d;
        float* yo = out + (bl * heads + h) * d;
        if (norm) {
          const float inv = rms_inverse(xi, d, norm->eps);
          const std::vector<float>& w = norm->weight;
          for (int64_t i = 0; i < d; ++i)
            normed[static_cast<size_t>(i)] = xi[i] * inv * (w.empty() ? 1.0f : w[i]);
          xi = normed.data();
        }
        for (int64_t j = 0; j < pairs; ++j) {
          const int64_t i1 = interleaved ? 2 * j : j;
          const float x1 = xi[i1], x2 = xi[i1 + step];
          yo[i1] = x1 * c[j] - x2 * s[j];
          yo[i1 + step] = x1 * s[j] + x2 * c[j];
        }
      }
    }
  });
  return y;
}

}  // namespace

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, ops::RopeLayout layout) {
  return rotate(x, std::nullopt, cos, sin, layout);
}

Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, const Tensor& cos,
                     const Tensor& sin, ops::RopeLayout layout) {
  return rotate(x, HeadNorm{widen(weight), eps}, cos, sin, layout);
}

}  // namespace zflow::cpu
