// AVX2 dequantisation of the GGML block types gemm meets most (Q8_0, Q4_0 and
// the k-quants Q4_K, Q5_K, Q6_K of Q4_K_M-style files), used by the AVX2
// and AVX-512 gemm kernels as they pack a quantised weight. Results equal
// core/quant_blocks.h's dequantize_blocks bit for bit: the same single float32 multiply per
// value, no fused multiply-add. Callers must have checked that the processor has AVX2 + F16C.
#pragma once

#include <cstdint>

#include "core/dtype.h"

namespace zflow::cpu {

// Dequantises n values (whole blocks) of `type`; false (and nothing written) for types it
// has no code for, or on a build without x86-64.
bool dequantize_avx2(DType type, const uint8_t* blocks, float* dst, int64_t n);

// Widens n float8 values (F8_E4M3 or F8_E5M2) to float32, exactly (NaN codes to NaN). Both go
// through float16 and the F16C converter, which handles subnormals without the slow path a
// float32 subnormal multiply takes: e5m2 is the top byte of a float16; e4m3 shifted into a
// float16's exponent and mantissa is the value times 2^-8, undone by one exact multiply.
// Scalar code for the tail; on a build without x86-64, a table lookup.
void widen_f8_avx2(DType type, const uint8_t* src, float* dst, int64_t n);

}  // namespace zflow::cpu
