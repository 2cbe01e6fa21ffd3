// Attention for head dims the flash kernel does not take (above 256, e.g. the autoencoder's
// one 512-wide head over every pixel): the scores by a float32 batched matmul in chunks of
// query rows (at most kMaxScoreBytes of scores at once), softmax in float32, then P V in the
// activation dtype, as an unfused SDPA would. Unmasked, one kv head per head.
#include <algorithm>

#include "backend/cuda/kernels.h"
#include "core/error.h"

namespace zflow::cuda {
namespace {

constexpr int64_t kMaxScoreBytes = int64_t{1} << 30;

}  // namespace

Tensor attention_by_matmul(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                           const ops::AttentionMask& mask) {
  const int64_t b = q.size(0), h = q.size(1), lq = q.size(2), lk = k.size(2);
  ZF_CHECK(!mask.causal && mask.key_lengths.empty() && k.size(1) == h,
           "[attention] head dim {}: the GPU takes head dims above 256 only without a mask and "
           "with as many kv heads as heads (got causal {}, {} key lengths, {} kv heads for {})",
           q.size(3), mask.causal, mask.key_lengths.size(), k.size(1), h);
  if (lq == 0) return Tensor::empty({b, h, 0, v.size(3)}, q.dtype(), Device::CUDA);
  const Tensor q32 = affine_scalar(q.to(DType::F32), scale, 0.0f);
  const Tensor k32t = k.to(DType::F32).permute({0, 1, 3, 2}).contiguous();  // [B, H, D, Lk]
  const int64_t per_row = b * h * lk * static_cast<int64_t>(sizeof(float));
  const int64_t rows = std::max<int64_t>(1, kMaxScoreBytes / std::max<int64_t>(1, per_row));
  std::vector<Tensor> chunks;
  for (int64_t r0 = 0; r0 < lq; r0 += rows) {
    const Tensor qc = q32.slice(2, r0, std::min(lq, r0 + rows)).contiguous();
    const Tensor p = softmax(matmul(qc, k32t)).to(q.dtype());  // [B, H, rows, Lk]
    chunks.push_back(matmul(p, v));
  }
  if (chunks.size() == 1) return chunks[0];
  Shape shape = chunks[0].shape();
  shape[2] = lq;
  return concat(chunks, 2, shape);
}

}  // namespace zflow::cuda
