// gemm_s8's driver: argument checks and the cache-blocked loop nest around the micro-kernel,
// as gemm.cpp's for float32 products (sizes in gemm_blocking.h). The int32 sums of a tile
// live in C itself between depth blocks; the last block's micro-kernel turns them into the
// scaled float32 result.
#include "backend/cpu/gemm_s8.h"

#include <algorithm>
#include <cstring>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm_blocking.h"
#include "backend/cpu/gemm_driver.h"
#include "backend/cpu/gemm_s8_kernels.h"
#include "core/error.h"

namespace zflow::cpu {

namespace {

using gemm_detail::ceil_div;
using gemm_detail::PackBuffer;
using gemm_detail::round_up;

thread_local PackBuffer t_pack_a;
thread_local PackBuffer t_pack_b;
thread_local PackBuffer t_col_offset;

constexpr int kMaxTile = 12 * 32;

void check_args(const GemmS8Args& g) {
  ZF_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, "[gemm_s8] negative size: m={} n={} k={}", g.m, g.n,
           g.k);
  ZF_CHECK(g.k <= kGemmS8MaxDepth, "[gemm_s8] K={} is deeper than the {} whose sums fit in int32",
           g.k, kGemmS8MaxDepth);
  ZF_CHECK(g.lda >= g.k, "[gemm_s8] lda {} is shorter than a row of A ({})", g.lda, g.k);
  ZF_CHECK(g.ldb >= g.k, "[gemm_s8] ldb {} is shorter than a row of B ({})", g.ldb, g.k);
  ZF_CHECK(g.ldc >= g.n, "[gemm_s8] ldc {} is shorter than a row of C ({})", g.ldc, g.n);
  if (g.m == 0 || g.n == 0) return;
  ZF_CHECK(g.c != nullptr && g.row_scale != nullptr && g.col_scale != nullptr,
           "[gemm_s8] C or a scale is null for a {}x{} output", g.m, g.n);
  if (g.k > 0)
    ZF_CHECK(g.a != nullptr && g.b != nullptr, "[gemm_s8] A or B is null with k={}", g.k);
}

// The epilogue of gemm_s8.h for one element (edge tiles, and K = 0).
float finish(int32_t sum, int32_t offset, float row_scale, float col_scale, const float* bias) {
  return int8_product_output(static_cast<float>(sum - offset), row_scale, col_scale, bias);
}

// One thread's share: rows [m0, m1) x columns [n0, n1) of C, the whole depth.
void gemm_s8_region(const GemmS8Kernel& kern, const GemmS8Args& g, int64_t m0, int64_t m1,
                    int64_t n0, int64_t n1) {
  const GemmBlocking& bk = kern.blocking;
  const int64_t mr = bk.mr, nr = bk.nr;
  const int64_t ks_max = ceil_div(bk.kc, 4);
  uint32_t* a_pack =
      t_pack_a.get<uint32_t>(round_up(std::min<int64_t>(bk.mc, m1 - m0), mr) * ks_max);
  uint32_t* b_pack =
      t_pack_b.get<uint32_t>(round_up(std::min<int64_t>(bk.nc, n1 - n0), nr) * ks_max);
  int32_t* col_offset = t_col_offset.get<int32_t>(round_up(std::min<int64_t>(bk.nc, n1 - n0), nr));
  alignas(64) int32_t tile[kMaxTile];

  for (int64_t jc = n0; jc < n1; jc += bk.nc) {
    const int64_t nc = std::min<int64_t>(bk.nc, n1 - jc);
    std::fill_n(col_offset, round_up(nc, nr), 0);
    for (int64_t pc = 0; pc < g.k; pc += bk.kc) {
      const int64_t kc = std::min<int64_t>(bk.kc, g.k - pc);
      const int64_t ks = ceil_div(kc, 4);
      const bool accumulate = pc > 0, last = pc + kc == g.k;
      kern.pack_b(g, pc, kc, jc, nc, b_pack, col_offset);
      for (int64_t ic = m0; ic < m1; ic += bk.mc) {
        const int64_t mc = std::min<int64_t>(bk.mc, m1 - ic);
        kern.pack_a(g, ic, mc, pc, kc, a_pack);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t ncols = std::min(nr, nc - jr);
          const uint32_t* b_sliver = b_pack + jr * ks;
          const int64_t j = jc + jr;
          const float* bias = g.bias != nullptr ? g.bias + j : nullptr;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t nrows = std::min(mr, mc - ir);
            const int64_t i = ic + ir;
            const uint32_t* a_sliver = a_pack + ir * ks;
            float* c = g.c + i * g.ldc + j;
            if (nrows == mr && ncols == nr) {
              const GemmS8Epilogue ep{col_offset + jr, g.row_scale + i, g.col_scale + j, bias};
              kern.micro(ks, a_sliver, b_sliver, c, g.ldc, accumulate, last ? &ep : nullptr);
              continue;
            }
            // Edge tile: the partial sums move through a full tile aside.
            const size_t row_bytes = static_cast<size_t>(ncols) * 4;
            if (accumulate)
              for (int64_t r = 0; r < nrows; ++r)
                std::memcpy(tile + r * nr, c + r * g.ldc, row_bytes);
            kern.micro(ks, a_sliver, b_sliver, reinterpret_cast<float*>(tile), nr, accumulate,
                       nullptr);
            for (int64_t r = 0; r < nrows; ++r) {
              if (!last) {
                std::memcpy(c + r * g.ldc, tile + r * nr, row_bytes);
                continue;
              }
              for (int64_t q = 0; q < ncols; ++q)
                c[r * g.ldc + q] = finish(tile[r * nr + q], col_offset[jr + q], g.row_scale[i + r],
                                          g.col_scale[j + q], bias != nullptr ? bias + q : nullptr);
            }
          }
        }
      }
    }
  }
}

}  // namespace

bool gemm_s8_available() {
  const CpuFeatures& f = cpu_features();
  return gemm_s8_kernel_avx512_vnni() != nullptr && f.avx512f && f.avx512bw && f.avx512_vnni &&
         f.avx2 && f.fma && f.f16c;
}

void gemm_s8(const GemmS8Args& args) {
  ZF_CHECK(gemm_s8_available(),
           "[gemm_s8] needs AVX-512 VNNI, which this processor lacks (it has: {})",
           cpu_features_string());
  gemm_s8_with_kernel(*gemm_s8_kernel_avx512_vnni(), args);
}

void gemm_s8_with_kernel(const GemmS8Kernel& kern, const GemmS8Args& g) {
  ZF_CHECK(kern.blocking.mr * kern.blocking.nr <= kMaxTile && kern.blocking.kc % 4 == 0,
           "[gemm_s8] a {}x{} tile or a depth block of {} does not fit the driver",
           kern.blocking.mr, kern.blocking.nr, kern.blocking.kc);
  check_args(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0) {
    for (int64_t i = 0; i < g.m; ++i)
      for (int64_t j = 0; j < g.n; ++j)
        g.c[i * g.ldc + j] =
            finish(0, 0, g.row_scale[i], g.col_scale[j], g.bias != nullptr ? g.bias + j : nullptr);
    return;
  }
  const gemm_detail::Grid grid =
      gemm_detail::choose_grid(kern.blocking, g.m, g.n, g.k, ThreadPool::compute().threads());
  gemm_detail::run_grid(grid, g.m, g.n, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    gemm_s8_region(kern, g, m0, m1, n0, n1);
  });
}

}  // namespace zflow::cpu
