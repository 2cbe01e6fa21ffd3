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
};

}  // namespace
}  // namespace zflow::cpu
