// Compiled for AVX2 + F16C by a target pragma, like the gemm kernels; contraction is off so
// that d * q stays one rounded multiply, as in the portable definition.
#include "backend/cpu/dequant_avx2.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#pragma clang fp contract(off)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#pragma GCC optimize("fp-contract=off")
#endif

namespace zflow::cpu {

namespace {

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Eight bytes as signed (or unsigned) integers, converted to float and scaled.
__m256 scale_i8(__m128i bytes8, __m256 d) {
  return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes8)), d);
}

// Q8_0: [d fp16][32 x int8], x = q * d.
void q8_0(const uint8_t* b, float* y, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i, b += 34, y += 32) {
    const __m256 d = _mm256_set1_ps(half(b));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 18));
    _mm256_storeu_ps(y, scale_i8(lo, d));
    _mm256_storeu_ps(y + 8, scale_i8(_mm_srli_si128(lo, 8), d));
    _mm256_storeu_ps(y + 16, scale_i8(hi, d));
    _mm256_storeu_ps(y + 24, scale_i8(_mm_srli_si128(hi, 8), d));
  }
}

// Q4_0: [d fp16][16 bytes: value j in the low nibble of byte j, value j + 16 in the high],
// x = (q - 8) * d. The nibbles minus 8 fit int8, so they reuse scale_i8.
void q4_0(const uint8_t* b, float* y, int64_t blocks) {
  const __m128i mask = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
  for (int64_t i = 0; i < blocks; ++i, b += 18, y += 32) {
    const __m256 d = _mm256_set1_ps(half(b));
    const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m128i lo = _mm_sub_epi8(_mm_and_si128(qs, mask), eight);
    const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(qs, 4), mask), eight);
    _mm256_storeu_ps(y, scale_i8(lo, d));
    _mm256_storeu_ps(y + 8, scale_i8(_mm_srli_si128(lo, 8), d));
    _mm256_storeu_ps(y + 16, scale_i8(hi, d));
    _mm256_storeu_ps(y + 24, scale_i8(_mm_srli_si128(hi, 8), d));
  }
}

// Thirty-two unsigned bytes (values < 128) as float, times dl, minus ml: the k-quants'
// y = dl * q - ml, one rounded multiply and one rounded subtraction as in the portable code.
void store_scaled_u8(__m256i bytes32, __m256 dl, __m256 ml, float* y) {
  const __m128i halves[2] = {_mm256_castsi256_si128(bytes32), _mm256_extracti128_si256(bytes32, 1)};
  for (int h = 0; h < 2; ++h)
    for (int q = 0; q < 2; ++q) {
      const __m128i eight = q == 0 ? halves[h] : _mm_srli_si128(halves[h], 8);
      const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(eight));
      _mm256_storeu_ps(y + 16 * h + 8 * q, _mm256_sub_ps(_mm256_mul_ps(v, dl), ml));
    }
}

// Q4_K and Q5_K's six-bit scale and min of sub-block s (the layout is described in
// core/quant_blocks.cpp).
void scale_min_k4(const uint8_t* p, int s, float& scale, float& min) {
  const int sc = s < 4 ? p[s] & 0x3F : (p[s + 4] & 0x0F) | ((p[s - 4] >> 2) & 0x30);
  const int m = s < 4 ? p[s + 4] & 0x3F : (p[s + 4] >> 4) | ((p[s] >> 2) & 0x30);
  scale = static_cast<float>(sc);
  min = static_cast<float>(m);
}

// Q4_K (144 bytes): [d][dmin][12 scale bytes][128 bytes of nibbles]; sub-block s reads chunk
// s / 2 of 32 bytes, low nibbles for even s and high for odd.
void q4_k(const uint8_t* b, float* y, int64_t blocks) {
  const __m256i mask = _mm256_set1_epi8(0x0F);
  for (int64_t i = 0; i < blocks; ++i, b += 144, y += 256) {
    const float d = half(b), dmin = half(b + 2);
    for (int c = 0; c < 4; ++c) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16 + 32 * c));
      const __m256i nibbles[2] = {_mm256_and_si256(qs, mask),
                                  _mm256_and_si256(_mm256_srli_epi16(qs, 4), mask)};
      for (int odd = 0; odd < 2; ++odd) {
        const int s = 2 * c + odd;
        float sc, m;
        scale_min_k4(b + 4, s, sc, m);
        store_scaled_u8(nibbles[odd], _mm256_set1_ps(d * sc), _mm256_set1_ps(dmin * m), y + 32 * s);
      }
    }
  }
}

// Q5_K (176 bytes): as Q4_K with 32 bytes of fifth bits before the nibbles: bit s of qh[l] is
// the fifth bit of value 32 s + l.
void q5_k(const uint8_t* b, float* y, int64_t blocks) {
  const __m256i mask = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
  for (int64_t i = 0; i < blocks; ++i, b += 176, y += 256) {
    const float d = half(b), dmin = half(b + 2);
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
    for (int c = 0; c < 4; ++c) {
      const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 48 + 32 * c));
      const __m256i nibbles[2] = {_mm256_and_si256(qs, mask),
                                  _mm256_and_si256(_mm256_srli_epi16(qs, 4), mask)};
      for (int odd = 0; odd < 2; ++odd) {
        const int s = 2 * c + odd;
        // Bit s of each byte: shifting 16-bit lanes by s < 8 keeps each byte's own bit s at
        // its bit 0; times 16 it cannot leave the byte.
        const __m256i fifth =
            _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s)), one), 4);
        float sc, m;
        scale_min_k4(b + 4, s, sc, m);
        store_scaled_u8(_mm256_or_si256(nibbles[odd], fifth), _mm256_set1_ps(d * sc),
                        _mm256_set1_ps(dmin * m), y + 32 * s);
      }
    }
  }
}

// Q6_K (210 bytes): [128 bytes of low nibbles][64 bytes of high crumbs][16 int8 scales][d].
// Value 128 h + 32 t + l (t < 4, l < 32): nibble t / 2 of ql[64 h + 32 (t % 2) + l], crumb t of
// qh[32 h + l], minus 32; scale (e / 16) applies to 16 values.
void q6_k(const uint8_t* b, float* y, int64_t blocks) {
  const __m256i mask4 = _mm256_set1_epi8(0x0F), mask2 = _mm256_set1_epi8(3),
                bias = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < blocks; ++i, b += 210, y += 256) {
    const float d = half(b + 208);
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    for (int h = 0; h < 2; ++h) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
      for (int t = 0; t < 4; ++t) {
        const __m256i ql =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32 * (t % 2)));
        const __m256i low = _mm256_and_si256(t < 2 ? ql : _mm256_srli_epi16(ql, 4), mask4);
        const __m256i high = _mm256_slli_epi16(
            _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * t)), mask2), 4);
        const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, high), bias);  // -32..31
        const int e = 128 * h + 32 * t;
        const __m128i halves[2] = {_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)};
        for (int half16 = 0; half16 < 2; ++half16) {
          const __m256 dl = _mm256_set1_ps(d * static_cast<float>(scales[(e + 16 * half16) / 16]));
          _mm256_storeu_ps(y + e + 16 * half16, scale_i8(halves[half16], dl));
          _mm256_storeu_ps(y + e + 16 * half16 + 8,
                           scale_i8(_mm_srli_si128(halves[half16], 8), dl));
        }
      }
    }
  }
}

// Sixteen e4m3 codes as float16 values 2^-8 times theirs: sign to bit 15, exponent and
// mantissa (7 bits) shifted to bits 13..7; the NaN codes (x111 1111) become float16 NaN.
__m256i e4m3_as_f16(__m128i codes) {
  const __m256i x = _mm256_cvtepu8_epi16(codes);
  const __m256i mag = _mm256_and_si256(x, _mm256_set1_epi16(0x7F));
  const __m256i sign = _mm256_slli_epi16(_mm256_and_si256(x, _mm256_set1_epi16(0x80)), 8);
  const __m256i is_nan = _mm256_cmpeq_epi16(mag, _mm256_set1_epi16(0x7F));
  const __m256i h = _mm256_or_si256(sign, _mm256_slli_epi16(mag, 7));
  return _mm256_or_si256(h, _mm256_and_si256(is_nan, _mm256_set1_epi16(0x7E00)));
}

}  // namespace

void widen_f8_avx2(DType type, const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  if (type == DType::F8_E4M3) {
    const __m256 two8 = _mm256_set1_ps(256.0f);  // exact: the power of two e4m3_as_f16 removed
    for (; i + 16 <= n; i += 16) {
      const __m256i h = e4m3_as_f16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
      _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtph_ps(_mm256_castsi256_si128(h)), two8));
      _mm256_storeu_ps(dst + i + 8,
                       _mm256_mul_ps(_mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)), two8));
    }
    for (; i < n; ++i) dst[i] = f8e4m3_bits_to_f32(src[i]);
  } else {
    for (; i + 16 <= n; i += 16) {
      const __m256i h = _mm256_slli_epi16(
          _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))), 8);
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm256_castsi256_si128(h)));
      _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1)));
    }
    for (; i < n; ++i) dst[i] = f8e5m2_bits_to_f32(src[i]);
  }
}

bool dequantize_avx2(DType type, const uint8_t* blocks, float* dst, int64_t n) {
  switch (type) {
    case DType::Q8_0:
      q8_0(blocks, dst, n / 32);
      return true;
    case DType::Q4_0:
      q4_0(blocks, dst, n / 32);
      return true;
    case DType::Q4_K:
      q4_k(blocks, dst, n / 256);
      return true;
    case DType::Q5_K:
      q5_k(blocks, dst, n / 256);
      return true;
    case DType::Q6_K:
      q6_k(blocks, dst, n / 256);
      return true;
    default:
      return false;
  }
}

}  // namespace zflow::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64

namespace zflow::cpu {
bool dequantize_avx2(DType, const uint8_t*, float*, int64_t) {
  return false;
}
void widen_f8_avx2(DType type, const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = type == DType::F8_E4M3 ? f8e4m3_bits_to_f32(src[i]) : f8e5m2_bits_to_f32(src[i]);
}
}  // namespace zflow::cpu

#endif
