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
ZF_HOST_DEVICE float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
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

// Value e of the block at b, per the layouts in core/quant_blocks.h.
ZF_HOST_DEVICE float q4_0_value(const uint8_t* b, int e) {
  return mul(half_at(b), static_cast<float>(nibble32(b + 2, e) - 8));
}

ZF_HOST_DEVICE float q4_1_value(const uint8_t* b, int e) {
  return add(mul(half_at(b), static_cast<float>(nibble32(b + 4, e))), half_at(b + 2));
}

ZF_HOST_DEVICE float q5_0_value(const uint8_t* b, int e) {
  const int q = nibble32(b + 6, e) | (((u32_at(b + 2) >> e) & 1) << 4);
  return mul(half_at(b), static_cast<float>(q - 16));
}

ZF_HOST_DEVICE float q5_1_value(const uint8_t* b, int e) {
  const int q = nibble32(b + 8, e) | (((u32_at(b + 4) >> e) & 1) << 4);
  return add(mul(half_at(b), static_cast<float>(q)), half_at(b + 2));
}

ZF_HOST_DEVICE float q8_0_value(const uint8_t* b, int e) {
  return mul(static_cast<float>(static_cast<int8_t>(b[2 + e])), half_at(b));
}

ZF_HOST_DEVICE float q2_k_value(const uint8_t* b, int e) {
  const uint8_t sc = b[e / 16];  // 16 scales: low nibble scale, high nibble min
  const float dl = mul(half_at(b + 80), static_cast<float>(sc & 0x0F));
  const float ml = mul(half_at(b + 82), static_cast<float>(sc >> 4));
  return sub(mul(dl, static_cast<float>(crumb(b + 16, e))), ml);
}

ZF_HOST_DEVICE float q3_k_value(const uint8_t* b, int e) {
  const uint8_t* hmask = b;  // 32: bit k of hmask[l] belongs to value 32 k + l
  const uint8_t* sc = b + 96;
  // Scale i (0..15): low 4 bits from sc[i % 8] (low nibble for i < 8, high for i >= 8),
  // high 2 bits from sc[8 + i % 4] at bit 2 * (i / 4); stored plus 32.
  const int i = e / 16;
  const int low = i < 8 ? (sc[i] & 0x0F) : (sc[i - 8] >> 4);
  const int high = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
  const int scale = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
  const float dl = mul(half_at(b + 108), static_cast<float>(scale));
  const int hbit = (hmask[e % 32] >> (e / 32)) & 1;
  return mul(dl, static_cast<float>(crumb(b + 32, e) - (hbit ? 0 : 4)));
}

ZF_HOST_DEVICE float q4_k_value(const uint8_t* b, int e) {
  int sc, m;
  scale_min_k4(b + 4, e / 32, sc, m);
  const float dl = mul(half_at(b), static_cast<float>(sc));
  const float ml = mul(half_at(b + 2), static_cast<float>(m));
  return sub(mul(dl, static_cast<float>(nibble_k(b + 16, e))), ml);
}

ZF_HOST_DEVICE float q5_k_value(const uint8_t* b, int e) {
  int sc, m;
  scale_min_k4(b + 4, e / 32, sc, m);
  const float dl = mul(half_at(b), static_cast<float>(sc));
  const float ml = mul(half_at(b + 2), static_cast<float>(m));
  // qh (32 bytes at 16): bit s of qh[l] is the 5th bit of value 32 s + l.
  const int q = nibble_k(b + 48, e) | (((b[16 + e % 32] >> (e / 32)) & 1) << 4);
  return sub(mul(dl, static_cast<float>(q)), ml);
}

ZF_HOST_DEVICE float q6_k_value(const uint8_t* b, int e) {
  const uint8_t* ql = b;        // 128: value 128 h + 64 t + l (l < 64) is nibble t of ql[64 h + l]
  const uint8_t* qh = b + 128;  // 64: value 128 h + 32 s + l (l < 32) is crumb s of qh[32 h + l]
  const int h = e / 128, r = e % 128;
  const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
  const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
  const int q = static_cast<int8_t>(static_cast<uint8_t>(low | (high << 4))) - 32;
  const float dl = mul(half_at(b + 208), static_cast<float>(static_cast<int8_t>(b[192 + e / 16])));
  return mul(dl, static_cast<float>(q));
}

// Value e of the block of `kind` at b.
ZF_HOST_DEVICE float block_value(BlockKind kind, const uint8_t* b, int e) {
  switch (kind) {
    case BlockKind::Q4_0:
      return q4_0_value(b, e);
    case BlockKind::Q4_1:
      return q4_1_value(b, e);
    case BlockKind::Q5_0:
      return q5_0_value(b, e);
    case BlockKind::Q5_1:
      return q5_1_value(b, e);
    case BlockKind::Q8_0:
      return q8_0_value(b, e);
    case BlockKind::Q2_K:
      return q2_k_value(b, e);
    case BlockKind::Q3_K:
      return q3_k_value(b, e);
    case BlockKind::Q4_K:
      return q4_k_value(b, e);
    case BlockKind::Q5_K:
      return q5_k_value(b, e);
    default:
      return q6_k_value(b, e);
  }
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
