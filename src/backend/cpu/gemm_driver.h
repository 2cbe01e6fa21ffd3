// What gemm's two drivers share (gemm.cpp for float32 products, gemm_s8.cpp for int8 ones):
// the per-thread packing buffers and the split of C between threads.
#pragma once

#include <cstdint>
#include <cstdlib>

#include "backend/cpu/gemm_kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu::gemm_detail {

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
inline int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

// A packing buffer per thread, kept between calls so steady-state gemm does not allocate
// (nor fault in fresh pages). 64-byte aligned: packed slivers are read as full vectors.
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { std::free(data_); }
  template <class T>
  T* get(int64_t count) {
    return static_cast<T*>(bytes(count * static_cast<int64_t>(sizeof(T))));
  }

 private:
  void* bytes(int64_t n);

  void* data_ = nullptr;
  int64_t capacity_ = 0;
};

// How C is cut between threads: a grid of tm x tn regions, one per thread.
struct Grid {
  int64_t tm = 1, tn = 1;
  int64_t rows = 0, cols = 0;  // per region, multiples of the tile
};

// The grid for an m x n x k product on `threads` threads with these tile and block sizes.
Grid choose_grid(const GemmBlocking& bk, int64_t m, int64_t n, int64_t k, int threads);

// Runs region(m0, m1, n0, n1) for every cell of the grid, on the compute pool when it has
// more than one. region must not throw (it runs on the pool's threads).
template <class Region>
void run_grid(const Grid& grid, int64_t m, int64_t n, const Region& region) {
  if (grid.tm * grid.tn == 1) {
    region(0, m, 0, n);
    return;
  }
  parallel_for(grid.tm * grid.tn, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t m0 = (t / grid.tn) * grid.rows, n0 = (t % grid.tn) * grid.cols;
      const int64_t m1 = m0 + grid.rows < m ? m0 + grid.rows : m;
      const int64_t n1 = n0 + grid.cols < n ? n0 + grid.cols : n;
      if (m0 < m1 && n0 < n1) region(m0, m1, n0, n1);
    }
  });
}

}  // namespace zflow::cpu::gemm_detail
