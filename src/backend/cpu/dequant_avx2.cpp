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
