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

}  // namespace

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
}  // namespace zflow::cpu

#endif
