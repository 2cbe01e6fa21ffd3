// Inside gemm_s8: the kernel table and its packed layouts. gemm_s8.cpp drives the blocking
// and threading (as gemm.cpp does for float32 products); gemm_kernel_avx512_vnni.cpp supplies
// the micro-kernel and packing, and tests run the same templates (gemm_s8_microkernel.h) on
// portable vectors.
#pragma once

#include <cstdint>

#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/gemm_s8.h"

namespace zflow::cpu {

// Packed layouts, in 32-bit slots zero-padded to full tiles: a slot holds four consecutive
// depths of one row of A or one column of B (the lowest depth in the low byte), as vpdpbusd
// pairs them. A is packed offset by 128 (a ^ 0x80: vpdpbusd multiplies unsigned bytes of A by
// signed bytes of B), so the kernel's sums carry 128 * sum_p b[j, p] too, which the epilogue
// takes away. With ks = ceil(kc / 4) slots along the depth:
//   A block: ceil(mc / mr) slivers, each ks x mr;  B block: ceil(nc / nr) slivers, each ks x nr.
struct GemmS8Epilogue {
  const int32_t* col_offset;  // 128 * sum_p b[j, p] for the tile's columns
  const float* row_scale;     // the tile's rows
  const float* col_scale;     // the tile's columns
  const float* bias;          // the tile's columns, or null
};

struct GemmS8Kernel {
  GemmBlocking blocking;  // kc counts depths, a multiple of 4
  // The mr x nr tile of sums over ks slots, plus (with `accumulate`) the partial sums already in
  // c. Without an epilogue the int32 sums' bits are stored in c for the next depth block; with
  // one, c gets the float32 result.
  void (*micro)(int64_t ks, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                bool accumulate, const GemmS8Epilogue* ep);
  // Packs rows [i0, i0 + mc) and depths [p0, p0 + kc) of A.
  void (*pack_a)(const GemmS8Args& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc,
                 uint32_t* out);
  // Packs depths [p0, p0 + kc) of columns [j0, j0 + nc) of B and adds 128 * each column's sum
  // over those depths to col_offset[0, nc).
  void (*pack_b)(const GemmS8Args& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, uint32_t* out,
                 int32_t* col_offset);
};

// gemm_s8 with any kernel table (tests run the VNNI geometry on portable vectors).
void gemm_s8_with_kernel(const GemmS8Kernel& kernel, const GemmS8Args& args);

// Defined in gemm_kernel_avx512_vnni.cpp; nullptr when built for a platform without it.
const GemmS8Kernel* gemm_s8_kernel_avx512_vnni();

}  // namespace zflow::cpu
