// Wall-clock time of a pipeline's stages, for the "[zimage] prompt encoded in 6.12 s" lines
// users compare with other programs' stage timings.
#pragma once

#include <chrono>

namespace zflow {

class Stopwatch {
 public:
  // Seconds since construction or the previous lap(), and restarts.
  double lap() {
    const auto now = std::chrono::steady_clock::now();
    const std::chrono::duration<double> elapsed = now - start_;
    start_ = now;
    return elapsed.count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace zflow
