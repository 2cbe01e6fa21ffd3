// Compiled for AVX-512 by a target pragma; callers ask int8_rows_avx512_available() first.
#include "backend/cpu/int8_rows_avx512.h"

#include "backend/cpu/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw")
#endif

namespace zflow::cpu {

namespace {

__mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace

float int8_row_scale_avx512(const float* x, int64_t n) {
  __m512 amax = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_maskz_loadu_ps(tail_mask(n - i), x + i);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    amax = _mm512_maskz_max_ps(0xFFFF, amax, _mm512_abs_ps(v));
  }
  if (nan != 0) return __builtin_nanf("");
  // max is exact, so the order of the lanes' reduction changes nothing. (No std::max here: a
  // standard template instantiated under the target pragma could stand in for the baseline one.)
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, amax);
  float top = 0.0f;
  for (const float lane : lanes) top = lane > top ? lane : top;
  const float scale = top / 127.0f;
  return scale < 1e-30f ? 1e-30f : scale;
}

void quantize_int8_row_avx512(const float* x, int64_t n, float scale, int8_t* q) {
  const __m512 s = _mm512_set1_ps(scale), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + i), s);
    // Clamped, then rounded half to even (as the scalar form's 1.5 * 2^23 trick); a NaN's
    // code is 0, as there. (The zero-masked forms with every lane set compute the plain ones;
    // the plain ones trip GCC 12's false "may be used uninitialized" warning.)
    const __m512 clamped = _mm512_maskz_min_ps(0xFFFF, _mm512_maskz_max_ps(0xFFFF, v, lo), hi);
    const __m512 rounded =
        _mm512_maskz_roundscale_ps(0xFFFF, clamped, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __mmask16 number = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
    const __m512i codes = _mm512_maskz_cvtps_epi32(number, rounded);
    _mm512_mask_cvtepi32_storeu_epi8(q + i, m, codes);
  }
}

}  // namespace zflow::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace zflow::cpu {

bool int8_rows_avx512_available() {
  const CpuFeatures& f = cpu_features();
  return f.avx512f && f.avx512bw;
}

}  // namespace zflow::cpu

#else  // not x86-64

namespace zflow::cpu {

bool int8_rows_avx512_available() {
  return false;
}
float int8_row_scale_avx512(const float*, int64_t) {
  return 0.0f;
}
void quantize_int8_row_avx512(const float*, int64_t, float, int8_t*) {}

}  // namespace zflow::cpu

#endif
