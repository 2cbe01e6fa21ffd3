// Python's `random.Random` (CPython 3.11), draw for draw: what a Python tool that picks with a
// seeded Random (the Dynamic Prompts extension's random mode) picks for that seed.
//
//   seed(n)          init_by_array over |n|'s 32-bit words (one zero word for 0)
//   getrandbits(k)   the next output's top k bits (k <= 32)
//   randbelow(n)     getrandbits(n.bit_length()) until it is below n: a draw even for n == 1
//   random()         (a >> 5, b >> 6) of two outputs as a 53-bit fraction
//   choices(w)       bisect_right of random() * total into the running sums of w
#pragma once

#include <cstdint>
#include <span>

#include "core/mt19937.h"

namespace zflow {

class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed) { this->seed(seed); }

  void seed(uint64_t n);  // seed(n) for n >= 0; Python seeds a negative n as |n|

  uint32_t getrandbits(int k);
  uint64_t randbelow(uint64_t n);              // 0 < n < 2^32
  int64_t randint(int64_t low, int64_t high);  // low <= high, both ends included
  double random();
  size_t choice(size_t n) { return randbelow(n); }  // the index random.choice takes
  // The index random.choices(population, weights=weights, k=1) takes; weights sum above zero.
  size_t choices(std::span<const double> weights);

 private:
  Mt19937 engine_;
};

}  // namespace zflow
