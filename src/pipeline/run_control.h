// What a caller passes into a long generation: a progress callback and a cancellation token.
// Both live in the call, never in global state, so two jobs in one process do not interfere.
#pragma once

#include <functional>
#include <stop_token>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/image.h"

namespace zflow::pipeline {

struct StepProgress {
  int step = 0;                // steps finished so far, 1..steps
  int steps = 0;               // steps this run takes
  double elapsed_seconds = 0;  // since the first step began
};

struct RunControl {
  std::function<void(const StepProgress&)>
      on_step;           // called after every step, on the caller's thread
  std::stop_token stop;  // checked before every step; a requested stop throws Cancelled
  // When set, called after every step with small pictures of the run so far: the current
  // estimate of the final images, decoded from latents reduced to at most kPreviewCells cells a
  // side (preview.h). Each costs a small VAE decode.
  std::function<void(const std::vector<io::Image>&)> on_preview;
  // Set by the pipelines (from on_preview), called by the sampling loop after every step with the
  // current estimate of the clean latents, x0 = x - sigma * v.
  std::function<void(const Tensor&)> on_estimate;
};

// `control` for one run of several in a row: its steps reported after the `done` steps of the
// runs before it, out of `total` in all.
inline RunControl counted(const RunControl& control, int done, int total) {
  RunControl c = control;
  if (control.on_step)
    c.on_step = [on_step = control.on_step, done, total](const StepProgress& p) {
      on_step({done + p.step, total, p.elapsed_seconds});
    };
  return c;
}

// Thrown when RunControl::stop was requested; the partial result is dropped.
class Cancelled : public Error {
 public:
  Cancelled() : Error("[pipeline] cancelled") {}
};

}  // namespace zflow::pipeline
