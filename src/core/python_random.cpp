#include "core/python_random.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "core/error.h"

namespace zflow {

void PythonRandom::seed(uint64_t n) {
  // Python drops high zero words but keeps one.
  const uint32_t words[2] = {static_cast<uint32_t>(n), static_cast<uint32_t>(n >> 32)};
  engine_.seed_by_array(std::span(words, n >> 32 ? 2 : 1));
}

uint32_t PythonRandom::getrandbits(int k) {
  ZF_CHECK(k >= 1 && k <= 32, "[random] getrandbits({}): 1 to 32 bits are supported", k);
  return engine_.next() >> (32 - k);
}

uint64_t PythonRandom::randbelow(uint64_t n) {
  ZF_CHECK(n > 0 && n < (uint64_t{1} << 32), "[random] randbelow({}): 1 to 2^32 - 1 expected", n);
  const int k = std::bit_width(n);  // n itself, not n - 1: n == 1 still draws one bit
  uint64_t r = getrandbits(k);
  while (r >= n) r = getrandbits(k);
  return r;
}

int64_t PythonRandom::randint(int64_t low, int64_t high) {
  ZF_CHECK(low <= high, "[random] randint({}, {}): an empty range", low, high);
  return low + static_cast<int64_t>(randbelow(static_cast<uint64_t>(high - low) + 1));
}

double PythonRandom::random() {
  const uint32_t a = engine_.next() >> 5;
  const uint32_t b = engine_.next() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

size_t PythonRandom::choices(std::span<const double> weights) {
  ZF_CHECK(!weights.empty(), "[random] choices: no weights");
  std::vector<double> running(weights.size());
  double sum = 0.0;
  for (size_t i = 0; i < weights.size(); ++i) running[i] = sum += weights[i];
  ZF_CHECK(sum > 0.0, "[random] choices: the weights sum to {}, above zero expected", sum);
  const double x = random() * sum;
  // bisect_right over all but the last sum: the last index takes everything beyond.
  return static_cast<size_t>(std::upper_bound(running.begin(), running.end() - 1, x) -
                             running.begin());
}

}  // namespace zflow
