// Classifier-free guidance as the Z-Image pipelines define it (diffusers 0.42.1
// pipeline_z_image*.py; facts: zimage.md §5.3). Z-Image's g is EXTRA guidance on top of the
// conditional prediction:
//   pred = pos + g * (pos - neg)          (the usual CFG scale w is 1 + g; g = 0: no CFG)
// cfg_normalization k > 0: when ||pred|| > k * ||pos|| (L2 over one whole sample), pred is scaled
// down to norm k * ||pos|| (the pipelines' `True` means k = 1).
// cfg_truncation c: a step whose normalised time t = 1 - sigma exceeds c runs without CFG (g = 0,
// and the negative pass is skipped), so c < 1 turns guidance off for the late steps.
#pragma once

#include <span>

namespace zflow::pipeline {

struct ZImageGuidance {
  float scale = 0.0f;          // g; CFG runs when g > 0
  float normalization = 0.0f;  // k; 0 = off
  double truncation = 1.0;     // c; compared in double with the float32 t, as Python does
};

// The g a step uses: 0 when guidance is off or truncated at this step's model time t = 1 - sigma.
float guidance_for_step(const ZImageGuidance& guidance, float model_time);

// pred = pos + g * (pos - neg), then the optional renormalisation, for ONE sample, in float32 with
// the operation order of the pipeline. out may alias pos.
void apply_zimage_cfg(std::span<const float> pos, std::span<const float> neg, float g,
                      float normalization, std::span<float> out);

}  // namespace zflow::pipeline
