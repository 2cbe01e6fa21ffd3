// GGML's block-quantised formats, the ones GGUF files store weights in: byte layouts,
// dequantisation and (for some) quantisation, one block at a time.
//
// Every block covers `dtype_block_size` consecutive values of a row (32 for the legacy
// types, 256 for the k-quants) in `dtype_block_bytes` bytes. Layouts, offsets in bytes
// (fp16 = IEEE half, little-endian; q = unsigned codes unless said):
//   Q4_0  [d fp16][qs 16: value j in the low nibble of qs[j], j + 16 in the high]   x = d * (q - 8)
//   Q4_1  [d fp16][m fp16][qs 16 as Q4_0]                                          x = d * q + m
//   Q5_0  [d fp16][qh u32: bit j = 5th bit of value j][qs 16 as Q4_0]             x = d * (q - 16)
//   Q5_1  [d fp16][m fp16][qh u32][qs 16]                                         x = d * q + m
//   Q8_0  [d fp16][qs 32 int8]                                                    x = d * q
//   Q2_K  [scales 16: low nibble scale, high min][qs 64: 2-bit][d fp16][dmin fp16]
//         16 sub-blocks of 16:  x = d * scale_s * q - dmin * min_s
//   Q3_K  [hmask 32][qs 64: low 2 bits][scales 12: 16 packed 6-bit, minus 32][d fp16]
//         16 sub-blocks of 16:  x = d * scale_s * (q_low - (high bit clear ? 4 : 0))
//   Q4_K  [d fp16][dmin fp16][scales 12: 8 packed 6-bit scales and mins][qs 128: 4-bit]
//         8 sub-blocks of 32:   x = d * scale_s * q - dmin * min_s
//   Q5_K  [d][dmin][scales 12][qh 32: 5th bits][qs 128]   as Q4_K with 5-bit q
//   Q6_K  [ql 128: low 4 bits][qh 64: high 2 bits][scales 16 int8][d fp16]
//         16 sub-blocks of 16:  x = d * scale_s * (q - 32)
// The bit positions within qs / qh follow gguf-py 0.19 (gguf/quants.py), which mirrors
// ggml-quants.c; the .cpp spells out each one.
//
// Dequantisation equals gguf.quants.dequantize bit for bit: the same float32 operations in
// the same order (e.g. Q4_K's (d * scale) * q - dmin * min, no fused multiply-add).
// Quantisation of Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 equals gguf.quants.quantize bit for bit
// (ggml's reference quantisers). Q4_K, Q5_K and Q6_K have quantisers of their own (a
// least-squares search for each sub-block's scale and min, as ggml's reference does in
// spirit; gguf-py has none to compare with), checked by their round-trip error. Q2_K and Q3_K
// can be read but not written.
#pragma once

#include <cstdint>

#include "core/dtype.h"
#include "core/quant_block_values.h"

namespace zflow {

// Dequantises n values (whole blocks) of a block-quantised `type` at `src` to float32.
void dequantize_blocks(DType type, const void* src, float* dst, int64_t n);

// The block kind of a block-quantised `type` (the GPU kernels take it); an Error for others.
quant::BlockKind block_kind(DType type);

// Whether quantize_blocks can write `type`.
bool can_quantize(DType type);

// Quantises n float32 values (whole blocks) to `type`; an Error for types without a
// quantiser.
void quantize_blocks(DType type, const float* src, void* dst, int64_t n);

}  // namespace zflow
