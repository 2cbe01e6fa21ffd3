#include "core/hadamard.h"

#include "core/error.h"

namespace zflow {

bool is_hadamard_group(int64_t group) {
  if (group < 4) return false;
  while (group % 4 == 0) group /= 4;
  return group == 1;
}

void rotate_hadamard_groups(float* x, int64_t n, int64_t group) {
  ZF_CHECK(is_hadamard_group(group) && n % group == 0,
           "[hadamard] a group of {} does not rotate {} values (a power of four dividing them)",
           group, n);
  // H4 ⊗ ... ⊗ H4 acts on each base-4 digit of a value's index on its own: one pass of 4-point
  // butterflies per digit (stride 1, 4, 16, ...), each pass mixing values `stride` apart.
  // Every pass is unnormalised (entries +-1); the 1 / 2^n at the end is exact.
  float norm = 1.0f;
  for (int64_t stride = 1; stride < group; stride *= 4) {
    norm *= 0.5f;
    for (int64_t base = 0; base < n; base += 4 * stride) {
      for (int64_t j = base; j < base + stride; ++j) {
        const float a = x[j], b = x[j + stride], c = x[j + 2 * stride], d = x[j + 3 * stride];
        x[j] = a + b + c - d;
        x[j + stride] = a + b - c + d;
        x[j + 2 * stride] = a - b + c + d;
        x[j + 3 * stride] = -a + b + c + d;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i) x[i] *= norm;
}

}  // namespace zflow
