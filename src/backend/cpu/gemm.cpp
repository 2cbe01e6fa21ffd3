// gemm's driver: argument checks, kernel choice, the split of C between threads, and
// the cache-blocked loop nest around the micro-kernel (sizes in gemm_blocking.h).
#include "backend/cpu/gemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm_driver.h"
#include "backend/cpu/gemm_kernels.h"
#include "core/error.h"
#include "core/thread_pool.h"

namespace zflow::cpu {

namespace {

using gemm_detail::ceil_div;
using gemm_detail::PackBuffer;
using gemm_detail::round_up;

std::atomic<MatmulPrecision> g_matmul_precision{MatmulPrecision::Bfloat16};

thread_local PackBuffer t_pack_a;
thread_local PackBuffer t_pack_b;

constexpr int kMaxTile = 12 * 32;  // the largest mr x nr in gemm_blocking.h

const GemmKernel* kernel_for(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Scalar:
      return gemm_kernel_scalar();
    case GemmIsa::Avx2:
      return gemm_kernel_avx2();
    case GemmIsa::Avx512:
      return gemm_kernel_avx512();
    case GemmIsa::Avx512Bf16:
      return gemm_kernel_avx512_bf16();
  }
  return nullptr;
}

bool isa_available(GemmIsa isa) {
  const CpuFeatures& f = cpu_features();
  if (kernel_for(isa) == nullptr) return false;
  switch (isa) {
    case GemmIsa::Scalar:
      return true;
    case GemmIsa::Avx2:
      return f.avx2 && f.fma && f.f16c;
    case GemmIsa::Avx512:
      return f.avx512f && f.avx2 && f.fma && f.f16c;
    case GemmIsa::Avx512Bf16:
      return f.avx512f && f.avx512bw && f.avx512_bf16 && f.avx2 && f.fma && f.f16c;
  }
  return false;
}

constexpr GemmIsa kAllIsas[] = {GemmIsa::Scalar, GemmIsa::Avx2, GemmIsa::Avx512,
                                GemmIsa::Avx512Bf16};

// The kernel ZFLOW_CPU_KERNEL names, if it names one.
std::optional<GemmIsa> forced_isa() {
  const char* forced = std::getenv("ZFLOW_CPU_KERNEL");
  if (forced != nullptr && *forced != '\0') {
    for (GemmIsa isa : kAllIsas) {
      if (gemm_isa_name(isa) != forced) continue;
      ZF_CHECK(isa_available(isa),
               "[gemm] ZFLOW_CPU_KERNEL={}: this processor cannot run it (it has: {})", forced,
               cpu_features_string());
      return isa;
    }
    fail("[gemm] ZFLOW_CPU_KERNEL={}: unknown kernel, expected scalar, avx2, avx512 or avx512bf16",
         forced);
  }
  return std::nullopt;
}

// The fastest kernel that computes in float32 (Scalar is always there).
GemmIsa fastest_float32_isa() {
  GemmIsa best = GemmIsa::Scalar;
  for (GemmIsa isa : {GemmIsa::Avx2, GemmIsa::Avx512})
    if (isa_available(isa)) best = isa;
  return best;
}

void check_args(const GemmArgs& g) {
  if (dtype_is_quantized(g.b_dtype)) {
    const int64_t block = dtype_block_size(g.b_dtype);
    ZF_CHECK(g.trans_b, "[gemm] a {} B must be a Linear weight (trans_b, blocks along K)",
             dtype_name(g.b_dtype));
    ZF_CHECK(g.k % block == 0 && g.ldb % block == 0,
             "[gemm] a {} B needs K ({}) and ldb ({}) in whole blocks of {}", dtype_name(g.b_dtype),
             g.k, g.ldb, block);
  } else {
    ZF_CHECK(g.b_dtype == DType::F32 || g.b_dtype == DType::BF16 || g.b_dtype == DType::F16 ||
                 dtype_is_float8(g.b_dtype) || g.b_dtype == DType::I8,
             "[gemm] B dtype {} is not supported, expected F32, BF16, F16, F8_E4M3, F8_E5M2, I8 "
             "or a GGML block type",
             dtype_name(g.b_dtype));
  }
  ZF_CHECK(g.m >= 0 && g.n >= 0 && g.k >= 0, "[gemm] negative size: m={} n={} k={}", g.m, g.n, g.k);
  const int64_t a_row = g.trans_a ? g.m : g.k, b_row = g.trans_b ? g.k : g.n;
  ZF_CHECK(g.lda >= a_row, "[gemm] lda {} is shorter than a row of A ({}, trans_a={})", g.lda,
           a_row, g.trans_a);
  ZF_CHECK(g.ldb >= b_row, "[gemm] ldb {} is shorter than a row of B ({}, trans_b={})", g.ldb,
           b_row, g.trans_b);
  ZF_CHECK(g.ldc >= g.n, "[gemm] ldc {} is shorter than a row of C ({})", g.ldc, g.n);
  if (g.m == 0 || g.n == 0) return;
  ZF_CHECK(g.c != nullptr, "[gemm] C is null for a {}x{} output", g.m, g.n);
  if (g.k > 0 && g.alpha != 0.0f)
    ZF_CHECK(g.a != nullptr && g.b != nullptr, "[gemm] A or B is null with k={}", g.k);
}

// C = beta * C, for k == 0 or alpha == 0 (A and B are not read, as in BLAS).
void scale_c(const GemmArgs& g) {
  for (int64_t i = 0; i < g.m; ++i) {
    float* row = g.c + i * g.ldc;
    if (g.beta == 0.0f)
      std::fill(row, row + g.n, 0.0f);
    else
      for (int64_t j = 0; j < g.n; ++j) row[j] *= g.beta;
  }
}

// The micro-kernel reads and writes its C tile only after the depth loop; when C is bigger
// than the caches that access misses all the way to memory and stalls. Asking for the tile
// now overlaps the miss with the multiply-adds. (Done here rather than inside the kernel,
// where GCC keeps the addresses in registers through the loop and spills B vectors.)
void prefetch_tile(const float* c, int64_t ldc, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r, c += ldc) {
    for (int64_t j = 0; j < cols; j += 16) __builtin_prefetch(c + j, 1, 3);
    __builtin_prefetch(c + cols - 1, 1, 3);
  }
}

// One thread's share: rows [m0, m1) x columns [n0, n1) of C, the whole depth.
void gemm_region(const GemmKernel& kern, const GemmArgs& g, int64_t m0, int64_t m1, int64_t n0,
                 int64_t n1) {
  const GemmBlocking& bk = kern.blocking;
  const int64_t mr = bk.mr, nr = bk.nr;
  // Packed blocks hold ceil(kc / depth_per_slot) slots per row; the buffers, sized in
  // depths, always have room.
  float* a_pack = t_pack_a.get<float>(round_up(std::min<int64_t>(bk.mc, m1 - m0), mr) * bk.kc);
  float* b_pack = t_pack_b.get<float>(round_up(std::min<int64_t>(bk.nc, n1 - n0), nr) * bk.kc);
  alignas(64) float tile[kMaxTile];

  for (int64_t jc = n0; jc < n1; jc += bk.nc) {
    const int64_t nc = std::min<int64_t>(bk.nc, n1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += bk.kc) {
      const int64_t kc = std::min<int64_t>(bk.kc, g.k - pc);
      const int64_t ks = ceil_div(kc, kern.depth_per_slot);
      // The first depth block applies the caller's beta; later ones accumulate.
      const float beta = pc == 0 ? g.beta : 1.0f;
      kern.pack_b(g, pc, kc, jc, nc, b_pack);
      for (int64_t ic = m0; ic < m1; ic += bk.mc) {
        const int64_t mc = std::min<int64_t>(bk.mc, m1 - ic);
        kern.pack_a(g, ic, mc, pc, kc, a_pack);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t ncols = std::min(nr, nc - jr);
          const float* b_sliver = b_pack + jr * ks;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t nrows = std::min(mr, mc - ir);
            const float* a_sliver = a_pack + ir * ks;
            float* c = g.c + (ic + ir) * g.ldc + jc + jr;
            prefetch_tile(c, g.ldc, nrows, ncols);
            if (nrows == mr && ncols == nr) {
              kern.micro(ks, a_sliver, b_sliver, c, g.ldc, g.alpha, beta);
              continue;
            }
            // Edge tile: compute the full tile aside, then merge the part inside C.
            kern.micro(ks, a_sliver, b_sliver, tile, nr, 1.0f, 0.0f);
            for (int64_t r = 0; r < nrows; ++r)
              for (int64_t j = 0; j < ncols; ++j) {
                float& out = c[r * g.ldc + j];
                const float v = g.alpha * tile[r * nr + j];
                out = beta == 0.0f ? v : v + beta * out;
              }
          }
        }
      }
    }
  }
}

}  // namespace

std::string_view gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Scalar:
      return "scalar";
    case GemmIsa::Avx2:
      return "avx2";
    case GemmIsa::Avx512:
      return "avx512";
    case GemmIsa::Avx512Bf16:
      return "avx512bf16";
  }
  return "?";
}

std::vector<GemmIsa> gemm_available_isas() {
  std::vector<GemmIsa> out;
  for (GemmIsa isa : kAllIsas)
    if (isa_available(isa)) out.push_back(isa);
  return out;
}

void set_matmul_precision(MatmulPrecision precision) {
  g_matmul_precision.store(precision, std::memory_order_relaxed);
}

MatmulPrecision matmul_precision() {
  return g_matmul_precision.load(std::memory_order_relaxed);
}

GemmIsa gemm_default_isa(DType b_dtype) {
  static const std::optional<GemmIsa> forced = forced_isa();
  static const GemmIsa float32 = fastest_float32_isa();
  static const bool bf16 = isa_available(GemmIsa::Avx512Bf16);
  if (forced) return *forced;
  // Int8 weights are exact in bfloat16, as are the integer activations ops::linear pairs them
  // with (backend/cpu/linear_int8.cpp).
  const bool pairs_fit = b_dtype == DType::BF16 || dtype_is_float8(b_dtype) ||
                         dtype_is_quantized(b_dtype) || b_dtype == DType::I8;
  return bf16 && pairs_fit && matmul_precision() == MatmulPrecision::Bfloat16 ? GemmIsa::Avx512Bf16
                                                                              : float32;
}

void gemm_with_isa(GemmIsa isa, const GemmArgs& g) {
  ZF_CHECK(isa_available(isa), "[gemm] the {} kernel cannot run here (this processor has: {})",
           gemm_isa_name(isa), cpu_features_string());
  gemm_with_kernel(*kernel_for(isa), g);
}

void gemm_with_kernel(const GemmKernel& kern, const GemmArgs& g) {
  ZF_CHECK(kern.blocking.mr * kern.blocking.nr <= kMaxTile,
           "[gemm] a {}x{} register tile is larger than the {} floats gemm keeps for edges",
           kern.blocking.mr, kern.blocking.nr, kMaxTile);
  check_args(g);
  if (g.m == 0 || g.n == 0) return;
  if (g.k == 0 || g.alpha == 0.0f) {
    scale_c(g);
    return;
  }
  if (dtype_is_quantized(g.b_dtype) && kern.blocking.kc % dtype_block_size(g.b_dtype) != 0) {
    // Depth blocks must hold whole GGML blocks (the AVX-512 kc of 192 is 6 Q8_0 blocks but
    // not a k-quant block of 256): round kc up to a multiple of the block.
    GemmKernel rounded = kern;
    rounded.blocking.kc = static_cast<int>(round_up(kern.blocking.kc, dtype_block_size(g.b_dtype)));
    gemm_with_kernel(rounded, g);
    return;
  }
  ZF_CHECK(kern.depth_per_slot == 1 || kern.blocking.kc <= kMaxPairDepth,
           "[gemm] a depth block of {} is deeper than the {} a bfloat16-pair kernel packs",
           kern.blocking.kc, kMaxPairDepth);
  const gemm_detail::Grid grid =
      gemm_detail::choose_grid(kern.blocking, g.m, g.n, g.k, ThreadPool::compute().threads());
  gemm_detail::run_grid(grid, g.m, g.n, [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
    gemm_region(kern, g, m0, m1, n0, n1);
  });
}

void gemm(const GemmArgs& args) {
  gemm_with_isa(gemm_default_isa(args.b_dtype), args);
}

}  // namespace zflow::cpu
