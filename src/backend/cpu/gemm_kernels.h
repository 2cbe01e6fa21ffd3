// Inside gemm: the per-instruction-set kernels and how one is chosen. gemm.cpp drives
// the blocking and threading; each gemm_kernel_<isa>.cpp supplies a register-tiled
// micro-kernel and the packing routines, compiled for its instruction set with a target
// pragma (the rest of the library stays baseline x86-64). Tests and benchmarks use this
// header to run every kernel the processor supports.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "backend/cpu/gemm.h"

namespace zflow::cpu {

enum class GemmIsa { Scalar, Avx2, Avx512 };

std::string_view gemm_isa_name(GemmIsa isa);

// Blocking sizes for one kernel; the values and the reasons for them are in
// gemm_blocking.h.
struct GemmBlocking {
  int mr, nr;      // register tile: mr rows of C by nr columns
  int mc, kc, nc;  // cache blocks: A block mc x kc, B block kc x nc
};

// Packed layouts (all float32, zero-padded to full tiles):
//   A block: ceil(mc / mr) slivers, each kc x mr (for every k, mr consecutive rows of op(A)).
//   B block: ceil(nc / nr) slivers, each kc x nr (for every k, nr consecutive columns of op(B)).
struct GemmKernel {
  GemmIsa isa;
  GemmBlocking blocking;
  // c[0..mr) x [0..nr) = alpha * (a_sliver * b_sliver) + beta * c; beta == 0 does not read c.
  void (*micro)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                float beta);
  // Packs rows [i0, i0 + mc) and depths [p0, p0 + kc) of op(A).
  void (*pack_a)(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out);
  // Packs depths [p0, p0 + kc) and columns [j0, j0 + nc) of op(B), widened to float32.
  void (*pack_b)(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out);
};

// The kernels this processor can run, slowest first (Scalar is always there).
std::vector<GemmIsa> gemm_available_isas();

// The kernel gemm() uses: the fastest available, or the one ZFLOW_CPU_KERNEL names
// (scalar | avx2 | avx512; naming one the processor lacks is an error).
GemmIsa gemm_default_isa();

// gemm() with a chosen kernel; fails if the processor cannot run it.
void gemm_with_isa(GemmIsa isa, const GemmArgs& args);

// gemm() with any kernel table, e.g. one a test builds to run a kernel's tile and block
// sizes on a processor that lacks its instruction set. The caller vouches for the kernel.
void gemm_with_kernel(const GemmKernel& kernel, const GemmArgs& args);

// Defined in the kernel files; each returns nullptr when built for a platform without it.
const GemmKernel* gemm_kernel_scalar();
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();

}  // namespace zflow::cpu
