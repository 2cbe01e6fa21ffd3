// The float32 vector operations of gemm's AVX-512 kernels (gemm_kernel_avx512.cpp and
// gemm_kernel_avx512_bf16.cpp), for gemm_microkernel.h's templates. Include it, like the
// templates, after the kernel file's target pragma; its anonymous namespace gives each
// kernel file a private copy compiled for that file's instruction set.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "backend/cpu/dequant_avx2.h"
#include "core/dtype.h"

namespace zflow::cpu {
namespace {

struct Avx512Ops {
  using V = __m512;
  static constexpr int kWidth = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V broadcast(float x) { return _mm512_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void widen_f16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    // The masked form computes the same; the unmasked one trips a GCC 12 false warning.
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i,
                       _mm512_maskz_cvtph_ps(
                           0xFFFF, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
  }
  static void widen_f8(DType type, const uint8_t* src, float* dst, int64_t n) {
    widen_f8_avx2(type, src, dst, n);
  }
  static bool dequantize(DType type, const uint8_t* blocks, float* dst, int64_t n) {
    return dequantize_avx2(type, blocks, dst, n);
  }

  // Transposes 16 x 16 32-bit words: row r (16 words at src + r * ld bytes) becomes column r
  // (dst + i * ldd bytes holds word i of every row). The classic three-stage transpose: 32-bit
  // then 64-bit interleaves of row pairs leave, in 128-bit lane L of u[4k + m], rows 4k..4k+3 of
  // column 4L + m; two 128-bit shuffles then gather lane L of u[m], u[4 + m], u[8 + m],
  // u[12 + m] into output row 4L + m. (The zero-masked forms with every lane set compute the
  // plain ones; the plain ones trip GCC 12's false "may be used uninitialized" warning.)
  static void transpose_words_16x16(const void* src, int64_t ld, void* dst, int64_t ldd) {
    const auto* in = static_cast<const char*>(src);
    auto* out = static_cast<char*>(dst);
    __m512i a[16], t[16], u[16];
    for (int r = 0; r < 16; ++r) a[r] = _mm512_loadu_si512(in + r * ld);
    for (int k = 0; k < 8; ++k) {
      t[2 * k] = _mm512_maskz_unpacklo_epi32(0xFFFF, a[2 * k], a[2 * k + 1]);
      t[2 * k + 1] = _mm512_maskz_unpackhi_epi32(0xFFFF, a[2 * k], a[2 * k + 1]);
    }
    for (int k = 0; k < 4; ++k) {
      u[4 * k] = _mm512_maskz_unpacklo_epi64(0xFF, t[4 * k], t[4 * k + 2]);
      u[4 * k + 1] = _mm512_maskz_unpackhi_epi64(0xFF, t[4 * k], t[4 * k + 2]);
      u[4 * k + 2] = _mm512_maskz_unpacklo_epi64(0xFF, t[4 * k + 1], t[4 * k + 3]);
      u[4 * k + 3] = _mm512_maskz_unpackhi_epi64(0xFF, t[4 * k + 1], t[4 * k + 3]);
    }
    for (int m = 0; m < 4; ++m) {
      const __m512i w0 = _mm512_maskz_shuffle_i32x4(0xFFFF, u[m], u[4 + m], 0x44);
      const __m512i w1 = _mm512_maskz_shuffle_i32x4(0xFFFF, u[m], u[4 + m], 0xEE);
      const __m512i w2 = _mm512_maskz_shuffle_i32x4(0xFFFF, u[8 + m], u[12 + m], 0x44);
      const __m512i w3 = _mm512_maskz_shuffle_i32x4(0xFFFF, u[8 + m], u[12 + m], 0xEE);
      _mm512_storeu_si512(out + (0 + m) * ldd, _mm512_maskz_shuffle_i32x4(0xFFFF, w0, w2, 0x88));
      _mm512_storeu_si512(out + (4 + m) * ldd, _mm512_maskz_shuffle_i32x4(0xFFFF, w0, w2, 0xDD));
      _mm512_storeu_si512(out + (8 + m) * ldd, _mm512_maskz_shuffle_i32x4(0xFFFF, w1, w3, 0x88));
      _mm512_storeu_si512(out + (12 + m) * ldd, _mm512_maskz_shuffle_i32x4(0xFFFF, w1, w3, 0xDD));
    }
  }
};

}  // namespace
}  // namespace zflow::cpu
