// gemm's AVX2 + FMA kernel (Haswell and later, Zen): 6 x 16 register tile of ymm
// accumulators. Compiled for AVX2 by a target pragma; gemm picks it at run time.
#include <cstdint>

#include "backend/cpu/dequant_avx2.h"
#include "backend/cpu/gemm_blocking.h"
#include "core/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif

#include "backend/cpu/gemm_microkernel.h"

namespace zflow::cpu {

namespace {

struct Avx2Ops {
  using V = __m256;
  static constexpr int kWidth = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V broadcast(float x) { return _mm256_set1_ps(x); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void widen_f16(const uint16_t* src, float* dst, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(dst + i,
                       _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
    for (; i < n; ++i) dst[i] = _cvtsh_ss(src[i]);
  }
  static void widen_f8(DType type, const uint8_t* src, float* dst, int64_t n) {
    widen_f8_avx2(type, src, dst, n);
  }
  static bool dequantize(DType type, const uint8_t* blocks, float* dst, int64_t n) {
    return dequantize_avx2(type, blocks, dst, n);
  }
};

constexpr GemmBlocking kB = kGemmBlockingAvx2;
static_assert(kB.nr % Avx2Ops::kWidth == 0);

const GemmKernel kKernel{
    GemmIsa::Avx2,
    kB,
    gemm_detail::micro_kernel<Avx2Ops, kB.mr, kB.nr / Avx2Ops::kWidth>,
    gemm_detail::pack_a<kB.mr>,
    gemm_detail::pack_b<Avx2Ops, kB.nr>,
};

}  // namespace

const GemmKernel* gemm_kernel_avx2() {
  return &kKernel;
}

}  // namespace zflow::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64

namespace zflow::cpu {
const GemmKernel* gemm_kernel_avx2() {
  return nullptr;
}
}  // namespace zflow::cpu

#endif
