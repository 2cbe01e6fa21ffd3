#include "pipeline/zimage_guidance.h"

#include <cmath>

#include "core/error.h"

namespace zflow::pipeline {

float guidance_for_step(const ZImageGuidance& guidance, float model_time) {
  if (!(guidance.scale > 0.0f)) return 0.0f;
  // The pipelines test truncation only when c <= 1; a larger c could never truncate anyway.
  if (guidance.truncation <= 1.0 && static_cast<double>(model_time) > guidance.truncation)
    return 0.0f;
  return guidance.scale;
}

namespace {

// torch.linalg.vector_norm of a float32 tensor, accumulated in double and rounded once (torch
// accumulates in float32 with its own blocking, so the two can differ in the last bit).
float l2_norm(std::span<const float> v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  return static_cast<float>(std::sqrt(sum));
}

}  // namespace

void apply_zimage_cfg(std::span<const float> pos, std::span<const float> neg, float g,
                      float normalization, std::span<float> out) {
  ZF_CHECK(pos.size() == neg.size() && pos.size() == out.size(),
           "[cfg] positive, negative and output sizes differ: {}, {}, {}", pos.size(), neg.size(),
           out.size());
  // Compute the norm of pos before out (which may alias pos) is written.
  const float pos_norm = normalization > 0.0f ? l2_norm(pos) : 0.0f;
  for (size_t i = 0; i < pos.size(); ++i) {
    const float diff = pos[i] - neg[i];
    const float scaled = g * diff;
    out[i] = pos[i] + scaled;
  }
  if (!(normalization > 0.0f)) return;
  const float new_norm = l2_norm(out);
  const float max_norm = pos_norm * normalization;
  if (new_norm > max_norm) {
    const float factor = max_norm / new_norm;
    for (float& x : out) x = x * factor;
  }
}

}  // namespace zflow::pipeline
