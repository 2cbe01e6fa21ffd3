// The two row passes of a softmax, vectorised where the processor allows: the row's maximum
// and exp(x - max) with its sum (attention's online softmax, ops::softmax). Written as scalar
// loops they cost attention more than anything but its matrix products: a maximum carried
// through one register, and a libm call per score.
#pragma once

#include <cstdint>
#include <vector>

namespace zflow::cpu {

// out[i] = exp(in[i] - shift) for i < n (in may be out); returns the sum of the outputs,
// accumulated in float64. Every shifted argument must be at most 0 (shift is the row's
// maximum). Within 2 ulp of the correctly rounded exp; arguments below -87.33 (where exp leaves
// float32's normal range), -inf included, give exactly 0.
double exp_shifted(const float* in, float* out, int64_t n, float shift);

// The largest of x[0..n), n >= 1 (-inf when all are -inf).
float row_max(const float* x, int64_t n);

// Every implementation this processor can run (libm, avx2, avx512), for tests; exp_shifted
// and row_max use the last.
struct ExpShiftedKernel {
  const char* name;
  double (*run)(const float* in, float* out, int64_t n, float shift);
  float (*max)(const float* x, int64_t n);
};
std::vector<ExpShiftedKernel> exp_shifted_kernels();

}  // namespace zflow::cpu
