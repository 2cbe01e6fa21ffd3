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

// Avx512Bf16 multiplies bfloat16 pairs (vdpbf16ps, accumulating in float32): it rounds A,
// and any B not already bfloat16, to bfloat16, so gemm uses it by default only for weights
// whose own precision that rounding does not coarsen (see gemm_default_isa).
enum class GemmIsa { Scalar, Avx2, Avx512, Avx512Bf16 };

std::string_view gemm_isa_name(GemmIsa isa);

// Blocking sizes for one kernel; the values and the reasons for them are in
// gemm_blocking.h.
struct GemmBlocking {
  int mr, nr;      // register tile: mr rows of C by nr columns
  int mc, kc, nc;  // cache blocks: A block mc x kc, B block kc x nc
};

// Packed layouts, in 32-bit slots zero-padded to full tiles. A slot holds depth_per_slot
// consecutive depths of one row of op(A) or one column of op(B): one float32 value, or two
// values rounded to bfloat16 (the lower depth in the low half, as vdpbf16ps pairs them).
// With ks = ceil(kc / depth_per_slot) slots along the depth:
//   A block: ceil(mc / mr) slivers, each ks x mr (for every slot, mr consecutive rows of op(A)).
//   B block: ceil(nc / nr) slivers, each ks x nr (for every slot, nr consecutive columns).
struct GemmKernel {
  GemmIsa isa;
  GemmBlocking blocking;
  // c[0..mr) x [0..nr) = alpha * (a_sliver * b_sliver) + beta * c over ks slots; beta == 0
  // does not read c.
  void (*micro)(int64_t ks, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                float beta);
  // Packs rows [i0, i0 + mc) and depths [p0, p0 + kc) of op(A).
  void (*pack_a)(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out);
  // Packs depths [p0, p0 + kc) and columns [j0, j0 + nc) of op(B) in any B dtype.
  void (*pack_b)(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out);
  int depth_per_slot = 1;
};

// The deepest depth block (kc, after gemm rounds it up to whole GGML blocks) a kernel with
// depth_per_slot 2 accepts: it folds each sliver into pairs through a scratch block this deep.
inline constexpr int64_t kMaxPairDepth = 512;

// The kernels this processor can run, slowest first (Scalar is always there).
std::vector<GemmIsa> gemm_available_isas();

// The kernel gemm() uses for a B stored in `b_dtype`: the one ZFLOW_CPU_KERNEL names
// (scalar | avx2 | avx512 | avx512bf16; naming one the processor lacks is an error), else
// Avx512Bf16 where the processor has it, the matmul precision is Bfloat16 and B is a bf16,
// float8 or GGML block-quantised weight, else the fastest float32 kernel. bfloat16 holds bf16
// and float8 values exactly; a dequantised GGML weight moves by at most 2^-9 of itself, below
// its quantisation step (at best 1/127 of its block's largest value for Q8_0; coarser for the
// rest), and ggml itself rounds the activations of a quantised matmul to 8 bits. float16 and
// float32 weights keep every bit: the float32 kernels.
GemmIsa gemm_default_isa(DType b_dtype);

// gemm() with a chosen kernel; fails if the processor cannot run it.
void gemm_with_isa(GemmIsa isa, const GemmArgs& args);

// gemm() with any kernel table, e.g. one a test builds to run a kernel's tile and block
// sizes on a processor that lacks its instruction set. The caller vouches for the kernel.
void gemm_with_kernel(const GemmKernel& kernel, const GemmArgs& args);

// Defined in the kernel files; each returns nullptr when built for a platform without it.
const GemmKernel* gemm_kernel_scalar();
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();
const GemmKernel* gemm_kernel_avx512_bf16();

}  // namespace zflow::cpu
