#include "core/mt19937.h"

#include <algorithm>

namespace zflow {

void Mt19937::seed(uint32_t s) {
  state_[0] = s;
  for (int i = 1; i < kStateWords; ++i) {
    const uint32_t prev = state_[i - 1];
    state_[i] = 1812433253u * (prev ^ (prev >> 30)) + static_cast<uint32_t>(i);
  }
  next_ = kStateWords;
}

void Mt19937::seed_by_array(std::span<const uint32_t> key) {
  seed(19650218u);
  const int n = kStateWords;
  const int key_length = static_cast<int>(key.size());
  int i = 1, j = 0;
  for (int k = std::max(n, key_length); k > 0; --k) {
    const uint32_t prev = state_[i - 1];
    state_[i] =
        (state_[i] ^ ((prev ^ (prev >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    if (++i >= n) {
      state_[0] = state_[n - 1];
      i = 1;
    }
    if (++j >= key_length) j = 0;
  }
  for (int k = n - 1; k > 0; --k) {
    const uint32_t prev = state_[i - 1];
    state_[i] = (state_[i] ^ ((prev ^ (prev >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    if (++i >= n) {
      state_[0] = state_[n - 1];
      i = 1;
    }
  }
  state_[0] = 0x80000000u;  // the most significant bit set: a non-zero initial state
  next_ = kStateWords;
}

// Advances all 624 words at once (the standard twist).
void Mt19937::refill() {
  constexpr int kShift = 397;
  auto twist = [](uint32_t upper_from, uint32_t lower_from) {
    const uint32_t mixed = (upper_from & 0x80000000u) | (lower_from & 0x7fffffffu);
    return (mixed >> 1) ^ ((lower_from & 1u) ? 0x9908b0dfu : 0u);
  };
  int i = 0;
  for (; i < kStateWords - kShift; ++i) {
    state_[i] = state_[i + kShift] ^ twist(state_[i], state_[i + 1]);
  }
  for (; i < kStateWords - 1; ++i) {
    state_[i] = state_[i + kShift - kStateWords] ^ twist(state_[i], state_[i + 1]);
  }
  state_[i] = state_[kShift - 1] ^ twist(state_[i], state_[0]);
  next_ = 0;
}

uint32_t Mt19937::next() {
  if (next_ == kStateWords) refill();
  uint32_t y = state_[next_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

}  // namespace zflow
