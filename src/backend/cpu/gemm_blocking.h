// gemm's tile and cache-block sizes, one row per kernel, with the reasons in one place.
//
// Loop nest (gemm.cpp), per thread over its own region of C:
//   for jc over N step nc:            B block (kc x nc) packed once, reused by every MC block
//     for pc over K step kc:          -> wants to sit in L3 (it is read once per MC block)
//       for ic over M step mc:        A block (mc x kc) packed, reused by every B sliver
//         for jr over nc step nr:     -> wants to sit in L2
//           for ir over mc step mr:   B sliver (kc x nr) reused by every A sliver -> L1
//             micro-kernel: mr x nr accumulators in registers, kc rank-1 updates
//
// Register tile (mr x nr): as many accumulators as the register file allows while leaving
// room for the nr / width B vectors and one broadcast of A; more accumulators means more
// independent FMA chains (latency 4 x 2 ports needs >= 8) and fewer loads per FMA.
//   scalar  (16 x 128-bit regs, portable vector extension): 4 x 8  -> 8 acc + 2 B + 1 A
//   avx2    (16 ymm): 6 x 16  -> 12 acc + 2 B + 1 A = 15; 12 FMAs per 2 loads + 6 broadcasts
//   avx512  (32 zmm): 12 x 32 -> 24 acc + 2 B + 1 A = 27; 24 FMAs per 2 loads + 12 broadcasts
//   avx512bf16: the same tile; each slot is a pair of bfloat16 depths, each step a vdpbf16ps
//   avx512vnni (gemm_s8): the same tile of int32 sums; each slot four int8 depths, each step
//     a vpdpbusd
//
// kc: the B sliver (kc x nr floats) must stay in L1 (32 KB on Zen 3/4 and Skylake, 48 KB
// on Ice Lake / Sapphire Rapids) next to the streamed A sliver, and kc should be long enough
// that loading and storing the C tile (once per kc) is cheap against kc FMAs per element.
//   avx2: 256 x 16 x 4 B = 16 KB;  avx512: 192 x 32 x 4 B = 24 KB;  scalar: 256 x 8 x 4 = 8 KB;
//   avx512bf16: 384 depths = 192 pair slots x 32 x 4 B = 24 KB (kc counts depths, not slots).
//   avx512vnni: 768 depths = 192 four-byte slots x 32 x 4 B = 24 KB, as avx512bf16 (on Zen 4,
//   gemm_bench's Z-Image projections: 780 GOP/s against 705-725 at 256 or 512 depths).
// mc: the packed A block (mc x kc) should fill about half of L2 (256 KB on older Intel,
// 512 KB - 2 MB elsewhere): avx2 144 x 256 x 4 B = 144 KB; avx512 192 x 192 x 4 B = 144 KB.
// Multiples of mr so only the last sliver of a thread's region is partial.
// nc: the B block (kc x nc) is per thread; 2048 columns = 2 MB (avx2) stays in a shared L3
// even with several threads, and is reused for every MC block. Multiple of nr.
#pragma once

#include "backend/cpu/gemm_kernels.h"

namespace zflow::cpu {

inline constexpr GemmBlocking kGemmBlockingScalar{4, 8, 128, 256, 2048};
inline constexpr GemmBlocking kGemmBlockingAvx2{6, 16, 144, 256, 2048};
inline constexpr GemmBlocking kGemmBlockingAvx512{12, 32, 192, 192, 2048};
inline constexpr GemmBlocking kGemmBlockingAvx512Bf16{12, 32, 192, 384, 2048};
inline constexpr GemmBlocking kGemmBlockingAvx512Vnni{12, 32, 192, 768, 2048};

}  // namespace zflow::cpu
