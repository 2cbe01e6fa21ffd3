// One value of a GGML block: the bit layouts of core/quant_blocks.h written once, for the host
// (quant_blocks.cpp dequantises whole blocks with them) and for the GPU (backend/cuda/dequant.cu
// dequantises weights on the device, a thread per value). The same float32 operations in the
// same order on both, never fused into a multiply-add, so both equal gguf-py bit for bit.
//
// Plain C++17 without the rest of the project: nvcc compiles it in the .cu files.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define ZF_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define ZF_HOST_DEVICE inline
#endif

// Host compilers would contract d * q - m into an FMA on targets that have one.
#if !defined(__CUDACC__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#elif !defined(__CUDACC__) && defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace zflow::quant {

// The GGML block types, in DType's order (core/dtype.h maps between them).
enum class BlockKind : int { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

// Rounded float32 products and sums (the device intrinsics are never contracted).
ZF_HOST_DEVICE float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
ZF_HOST_DEVICE float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// IEEE half at p (little-endian) as float32, exactly.
ZF_HOST_DEVICE float half_at(const uint8_t* p) {
  const uint32_t h = p[0] | (uint32_t{p[1]} << 8);
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float32
    const float v = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  const uint32_t bits =
      exp == 0x1F ? (sign | 0x7F800000u | (man << 13)) : (sign | ((exp + 112) << 23) | (man << 13));
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

ZF_HOST_DEVICE uint32_t u32_at(const uint8_t* p) {
  return p[0] | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

// The 4-bit code of value j (0..31) of a 32-value block: low nibbles hold 0..15, high 16..31.
ZF_HOST_DEVICE int nibble32(const uint8_t* qs, int j) {
  return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4);
}

// Q2_K and Q3_K keep their 2-bit codes four to a byte: value e = 128 h + 32 s + l
// (h half, s shift, l < 32) is bits 2s..2s+1 of qs[32 h + l].
ZF_HOST_DEVICE int crumb(const uint8_t* qs, int e) {
  const int h = e / 128, s = (e % 128) / 32, l = e % 32;
  return (qs[32 * h + l] >> (2 * s)) & 3;
}

// Q4_K / Q5_K: 8 six-bit scales and mins in 12 bytes. For sub-block s < 4 they are the low
// 6 bits of bytes s and s + 4; for s >= 4 the low nibble (scale) or high nibble (min) of
// byte s + 4, with the top two bits from the spare bits 6..7 of bytes s - 4 and s.
ZF_HOST_DEVICE void scale_min_k4(const uint8_t* p, int s, int& scale, int& min) {
  if (s < 4) {
    scale = p[s] & 0x3F;
    min = p[s + 4] & 0x3F;
  } else {
    scale = (p[s + 4] & 0x0F) | ((p[s - 4] >> 2) & 0x30);
    min = (p[s + 4] >> 4) | ((p[s] >> 2) & 0x30);
  }
}

// Sub-block s of 32 in Q4_K / Q5_K: chunk c = s / 2 of qs (32 bytes), low nibbles for even
// s, high for odd.
ZF_HOST_DEVICE int nibble_k(const uint8_t* qs, int e) {
  const int s = e / 32, l = e % 32;
  return (qs[32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F;
}

// Each format as a scale per sub-block and an integer code per value:
//   value e = d * code(e) + m   with (d, m) = scale(sub-block e / kSubValues)
// computed as add(mul(d, code), m). Formats without an offset have m = -0.0 (x + -0.0 == x for
// every x, -0.0 included) and those that subtract a min carry it negated (x - y == x + -y), so
// the values are those of gguf-py's formulas, bit for bit. The host loops over sub-blocks with
// the scale computed once; the GPU computes one value per thread.
struct SubScale {
  float d, m;
};

template <BlockKind K>
struct Layout;

template <>
struct Layout<BlockKind::Q4_0> {  // [d][qs 16]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int) { return {half_at(b), -0.0f}; }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) { return nibble32(b + 2, e) - 8; }
};

template <>
struct Layout<BlockKind::Q4_1> {  // [d][m][qs 16]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int) {
    return {half_at(b), half_at(b + 2)};
  }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) { return nibble32(b + 4, e); }
};

template <>
struct Layout<BlockKind::Q5_0> {  // [d][qh u32][qs 16]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int) { return {half_at(b), -0.0f}; }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) {
    return (nibble32(b + 6, e) | (((u32_at(b + 2) >> e) & 1) << 4)) - 16;
  }
};

template <>
struct Layout<BlockKind::Q5_1> {  // [d][m][qh u32][qs 16]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int) {
    return {half_at(b), half_at(b + 2)};
  }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) {
    return nibble32(b + 8, e) | (((u32_at(b + 4) >> e) & 1) << 4);
  }
};

template <>
struct Layout<BlockKind::Q8_0> {  // [d][qs 32 int8]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int) { return {half_at(b), -0.0f}; }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) { return static_cast<int8_t>(b[2 + e]); }
};

template <>
struct Layout<BlockKind::Q2_K> {  // [scales 16: low nibble scale, high min][qs 64][d][dmin]
  static constexpr int kSubValues = 16;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int s) {
    return {mul(half_at(b + 80), static_cast<float>(b[s] & 0x0F)),
            -mul(half_at(b + 82), static_cast<float>(b[s] >> 4))};
  }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) { return crumb(b + 16, e); }
};

template <>
struct Layout<BlockKind::Q3_K> {  // [hmask 32][qs 64][scales 12][d]
  static constexpr int kSubValues = 16;
  // Scale s (0..15): low 4 bits from sc[s % 8] (low nibble for s < 8, high for s >= 8), high 2
  // bits from sc[8 + s % 4] at bit 2 * (s / 4); stored plus 32.
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int s) {
    const uint8_t* sc = b + 96;
    const int low = s < 8 ? (sc[s] & 0x0F) : (sc[s - 8] >> 4);
    const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
    const int scale = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
    return {mul(half_at(b + 108), static_cast<float>(scale)), -0.0f};
  }
  // hmask: bit k of hmask[l] belongs to value 32 k + l; a clear bit subtracts 4.
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) {
    return crumb(b + 32, e) - (((b[e % 32] >> (e / 32)) & 1) ? 0 : 4);
  }
};

template <>
struct Layout<BlockKind::Q4_K> {  // [d][dmin][scales 12][qs 128]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int s) {
    int sc, m;
    scale_min_k4(b + 4, s, sc, m);
    return {mul(half_at(b), static_cast<float>(sc)), -mul(half_at(b + 2), static_cast<float>(m))};
  }
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) { return nibble_k(b + 16, e); }
};

template <>
struct Layout<BlockKind::Q5_K> {  // [d][dmin][scales 12][qh 32][qs 128]
  static constexpr int kSubValues = 32;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int s) {
    return Layout<BlockKind::Q4_K>::scale(b, s);
  }
  // qh: bit s of qh[l] is the 5th bit of value 32 s + l.
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) {
    return nibble_k(b + 48, e) | (((b[16 + e % 32] >> (e / 32)) & 1) << 4);
  }
};

template <>
struct Layout<BlockKind::Q6_K> {  // [ql 128][qh 64][scales 16 int8][d]
  static constexpr int kSubValues = 16;
  ZF_HOST_DEVICE static SubScale scale(const uint8_t* b, int s) {
    return {mul(half_at(b + 208), static_cast<float>(static_cast<int8_t>(b[192 + s]))), -0.0f};
  }
  // ql: value 128 h + 64 t + l (l < 64) is nibble t of ql[64 h + l]; qh: value 128 h + 32 s + l
  // (l < 32) is crumb s of qh[32 h + l]; stored plus 32.
  ZF_HOST_DEVICE static int code(const uint8_t* b, int e) {
    const int h = e / 128, r = e % 128;
    const int low = (b[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (b[128 + 32 * h + r % 32] >> (2 * (r / 32))) & 3;
    return static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
  }
};

// One value from its sub-block's scale and its code.
ZF_HOST_DEVICE float scaled(SubScale s, int code) {
  return add(mul(s.d, static_cast<float>(code)), s.m);
}

// Value e of the block of `kind` at b.
ZF_HOST_DEVICE float block_value(BlockKind kind, const uint8_t* b, int e) {
  switch (kind) {
#define ZF_BLOCK_VALUE(K)                                                               \
  case BlockKind::K:                                                                    \
    return scaled(Layout<BlockKind::K>::scale(b, e / Layout<BlockKind::K>::kSubValues), \
                  Layout<BlockKind::K>::code(b, e));
    ZF_BLOCK_VALUE(Q4_0)
    ZF_BLOCK_VALUE(Q4_1)
    ZF_BLOCK_VALUE(Q5_0)
    ZF_BLOCK_VALUE(Q5_1)
    ZF_BLOCK_VALUE(Q8_0)
    ZF_BLOCK_VALUE(Q2_K)
    ZF_BLOCK_VALUE(Q3_K)
    ZF_BLOCK_VALUE(Q4_K)
    ZF_BLOCK_VALUE(Q5_K)
    ZF_BLOCK_VALUE(Q6_K)
#undef ZF_BLOCK_VALUE
  }
  return 0.0f;
}

// Values per block and bytes per block.
ZF_HOST_DEVICE constexpr int block_values(BlockKind kind) {
  return static_cast<int>(kind) >= static_cast<int>(BlockKind::Q2_K) ? 256 : 32;
}
ZF_HOST_DEVICE constexpr int block_bytes(BlockKind kind) {
  constexpr int kBytes[] = {18, 20, 22, 24, 34, 84, 110, 144, 176, 210};
  return kBytes[static_cast<int>(kind)];
}

}  // namespace zflow::quant

#if !defined(__CUDACC__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
