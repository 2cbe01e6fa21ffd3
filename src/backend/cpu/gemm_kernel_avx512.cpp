// gemm's AVX-512F kernel (Skylake-SP and later, Zen 4): 12 x 32 register tile of zmm
// accumulators. Compiled for AVX-512F by a target pragma; gemm picks it at run time.
#include <cstdint>

#include "backend/cpu/dequant_avx2.h"
#include "backend/cpu/gemm_blocking.h"
#include "core/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#endif

#include "backend/cpu/gemm_microkernel.h"

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

constexpr GemmBlocking kB = kGemmBlockingAvx512;
static_assert(kB.nr % Avx512Ops::kWidth == 0);

const GemmKernel kKernel{
    GemmIsa::Avx512,
    kB,
    gemm_detail::micro_kernel<Avx512Ops, kB.mr, kB.nr / Avx512Ops::kWidth>,
    gemm_detail::pack_a<kB.mr>,
    gemm_detail::pack_b<Avx512Ops, kB.nr>,
};

}  // namespace

const GemmKernel* gemm_kernel_avx512() {
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
const GemmKernel* gemm_kernel_avx512() {
  return nullptr;
}
}  // namespace zflow::cpu

#endif
