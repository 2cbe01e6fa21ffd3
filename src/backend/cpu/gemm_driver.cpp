#include "backend/cpu/gemm_driver.h"

#include <algorithm>

#include "core/error.h"

namespace zflow::cpu::gemm_detail {

void* PackBuffer::bytes(int64_t n) {
  if (n > capacity_) {
    std::free(data_);
    const size_t size = static_cast<size_t>(round_up(n, 64));
    data_ = std::aligned_alloc(64, size);
    ZF_CHECK(data_ != nullptr, "[gemm] cannot allocate a {}-byte packing buffer", size);
    capacity_ = n;
  }
  return data_;
}

// Cutting along N shares out the packing of B (each thread packs only its columns) but makes
// every thread pack all of A; cutting along M the reverse. Pick the grid whose slowest thread
// does the least work: its padded multiply-adds plus the elements it packs.
Grid choose_grid(const GemmBlocking& bk, int64_t m, int64_t n, int64_t k, int threads) {
  // A packed element (load, widen, transpose, store) costs about as much as this many
  // multiply-adds at full FMA throughput; a thread needs about this much work to be worth
  // waking (a wake-up costs a few microseconds).
  constexpr double kPackCost = 16.0;
  constexpr double kMinWorkPerThread = 1 << 18;
  const double work = static_cast<double>(m) * n * k;
  const int t_max = static_cast<int>(
      std::clamp<double>(work / kMinWorkPerThread, 1.0, static_cast<double>(threads)));
  Grid best;
  double best_cost = -1.0;
  for (int t = t_max; t >= 1 && t >= t_max - 1; --t) {
    for (int64_t tm = 1; tm <= t; ++tm) {
      if (t % tm != 0) continue;
      const int64_t tn = t / tm;
      const int64_t rows = round_up(ceil_div(m, tm), bk.mr);
      const int64_t cols = round_up(ceil_div(n, tn), bk.nr);
      const double pack =
          static_cast<double>(rows) * k * ceil_div(cols, bk.nc) + static_cast<double>(cols) * k;
      const double cost = static_cast<double>(rows) * cols * k + kPackCost * pack;
      if (best_cost < 0.0 || cost < best_cost) {
        best_cost = cost;
        best = {tm, tn, rows, cols};
      }
    }
  }
  return best;
}

}  // namespace zflow::cpu::gemm_detail
