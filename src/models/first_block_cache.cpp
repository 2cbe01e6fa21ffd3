#include "models/first_block_cache.h"

#include <cmath>

#include "backend/ops.h"
#include "core/error.h"

namespace zflow::models {

namespace {

Tensor difference(const Tensor& a, const Tensor& b) {
  return ops::add(a, ops::mul_scalar(b, -1.0f));  // a - b: negation is exact
}

}  // namespace

FirstBlockCache::FirstBlockCache(double threshold, int contexts)
    : threshold_(threshold), contexts_(static_cast<size_t>(contexts)) {
  ZF_CHECK(threshold > 0.0 && std::isfinite(threshold),
           "[first_block_cache] threshold must be positive, got {}", threshold);
  ZF_CHECK(contexts >= 1, "[first_block_cache] {} contexts", contexts);
}

bool FirstBlockCache::first_block_done(const Tensor& input, const Tensor& output) {
  const auto n = static_cast<int64_t>(contexts_.size());
  ZF_CHECK(input.shape() == output.shape() && output.ndim() >= 2 && output.size(0) % n == 0,
           "[first_block_cache] first block {} -> {} for {} contexts", shape_str(input.shape()),
           shape_str(output.shape()), n);
  ++calls_;
  head_output_ = output;
  // The statistic is computed on the host in float32 values and double sums; only its
  // comparison with the threshold matters.
  const Tensor residual = difference(output, input).to(Device::CPU).to(DType::F32).contiguous();
  const int64_t per_context = residual.numel() / n, rows = residual.size(0) / n;
  bool any = false;
  for (int64_t c = 0; c < n; ++c) {
    Context& ctx = contexts_[static_cast<size_t>(c)];
    const float* r = residual.data<float>() + c * per_context;
    ctx.compute = !ctx.head_residual.defined();
    if (!ctx.compute) {
      const float* prev = ctx.head_residual.data<float>();
      double changed = 0.0, size = 0.0;
      for (int64_t i = 0; i < per_context; ++i) {
        changed += std::abs(static_cast<double>(r[i]) - prev[i]);
        size += std::abs(static_cast<double>(prev[i]));
      }
      ctx.compute = changed / size > threshold_;  // the ratio of the two means
    }
    if (ctx.compute) ctx.head_residual = residual.slice(0, c * rows, (c + 1) * rows).clone();
    any = any || ctx.compute;
  }
  if (!any) ++skipped_calls_;
  return any;
}

Tensor FirstBlockCache::last_block_done(const Tensor& computed) {
  ZF_CHECK(head_output_.defined(), "[first_block_cache] the last block before the first");
  const int64_t rows = head_output_.size(0) / static_cast<int64_t>(contexts_.size());
  std::vector<Tensor> parts;
  for (size_t c = 0; c < contexts_.size(); ++c) {
    Context& ctx = contexts_[c];
    const auto begin = static_cast<int64_t>(c) * rows;
    const Tensor head = head_output_.slice(0, begin, begin + rows).contiguous();
    if (ctx.compute) {
      ZF_CHECK(computed.defined() && computed.shape() == head_output_.shape(),
               "[first_block_cache] the later blocks gave {} for {}", shape_str(computed.shape()),
               shape_str(head_output_.shape()));
      const Tensor mine = computed.slice(0, begin, begin + rows).contiguous();
      ctx.tail_residual = difference(mine, head);
      parts.push_back(mine);
    } else {
      parts.push_back(ops::add(head, ctx.tail_residual));
    }
  }
  head_output_ = Tensor{};
  return parts.size() == 1 ? parts.front() : ops::concat(parts, 0);
}

}  // namespace zflow::models
