// The 32-bit Mersenne Twister (Matsumoto and Nishimura, 1998), the engine under both PyTorch's
// CPU generator and Python's `random` module. The two differ only in how they seed it: torch
// with init_genrand (one 32-bit word), Python with init_by_array (all words of the seed).
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace zflow {

class Mt19937 {
 public:
  // The reference init_genrand(s).
  void seed(uint32_t s);
  // The reference init_by_array(key): CPython's random.seed for an int, its absolute value cut
  // into 32-bit words, least significant first.
  void seed_by_array(std::span<const uint32_t> key);

  uint32_t next();  // the next tempered output

 private:
  static constexpr int kStateWords = 624;
  void refill();

  std::array<uint32_t, kStateWords> state_{};
  int next_ = kStateWords;  // index of the next untempered word; kStateWords: refill first
};

}  // namespace zflow
