// What a caller passes into a long generation: a progress callback and a cancellation token.
// Both live in the call, never in global state, so two jobs in one process do not interfere.
#pragma once

#include <functional>
#include <stop_token>

#include "core/error.h"

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
};

// Thrown when RunControl::stop was requested; the partial result is dropped.
class Cancelled : public Error {
 public:
  Cancelled() : Error("[pipeline] cancelled") {}
};

}  // namespace zflow::pipeline
