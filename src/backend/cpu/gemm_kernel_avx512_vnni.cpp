// gemm_s8's AVX-512 VNNI kernel (Ice Lake, Sapphire Rapids, Zen 4 and later): a 12 x 32 tile
// of int32 sums, each step a vpdpbusd (four byte products a lane, 64 a vector). Compiled for
// AVX-512 VNNI by a target pragma; gemm_s8 runs it where the processor has it.
#include <cstdint>

#include "backend/cpu/gemm_blocking.h"
#include "backend/cpu/gemm_s8_kernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vnni,avx2,fma,f16c")
#endif

#include "backend/cpu/gemm_avx512_ops.h"
#include "backend/cpu/gemm_s8_microkernel.h"

namespace zflow::cpu {

namespace {

struct Avx512VnniOps {
  using V = __m512i;
  static constexpr int kWidth = 16;
  static V zero() { return _mm512_setzero_si512(); }
  static V load(const void* p) { return _mm512_loadu_si512(p); }
  static void store(void* p, V v) { _mm512_storeu_si512(p, v); }
  static V broadcast(uint32_t word) { return _mm512_set1_epi32(static_cast<int>(word)); }
  static V dot4(V acc, V a, V b) { return _mm512_dpbusd_epi32(acc, a, b); }
  static void finish(V sums, const int32_t* offset, float row_scale, const float* col_scale,
                     const float* bias, float* out) {
    // (The zero-masked forms with every lane set compute the plain ones; the plain ones trip
    // GCC 12's false "may be used uninitialized" warning.)
    const __m512 value = _mm512_maskz_cvtepi32_ps(0xFFFF, _mm512_sub_epi32(sums, load(offset)));
    const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(row_scale), _mm512_loadu_ps(col_scale));
    // The explicit-rounding form is an opaque builtin, so the compiler cannot fuse it with the
    // bias addition into one FMA (which would round once where comfy-kitchen rounds twice).
    __m512 y = _mm512_maskz_mul_round_ps(0xFFFF, value, scale,
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (bias != nullptr) y = _mm512_add_ps(y, _mm512_loadu_ps(bias));
    _mm512_storeu_ps(out, y);
  }
  static void transpose_16x16(const int8_t* src, int64_t ld, uint32_t* dst, int64_t ldd) {
    Avx512Ops::transpose_words_16x16(src, ld, dst, ldd * 4);
  }
};

constexpr GemmBlocking kB = kGemmBlockingAvx512Vnni;
static_assert(kB.nr % Avx512VnniOps::kWidth == 0 && kB.kc % 64 == 0);

const GemmS8Kernel kKernel{
    kB,
    gemm_detail::micro_kernel_s8<Avx512VnniOps, kB.mr, kB.nr / Avx512VnniOps::kWidth>,
    gemm_detail::pack_a_s8<kB.mr>,
    gemm_detail::pack_b_s8<Avx512VnniOps, kB.nr>,
};

}  // namespace

const GemmS8Kernel* gemm_s8_kernel_avx512_vnni() {
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
const GemmS8Kernel* gemm_s8_kernel_avx512_vnni() {
  return nullptr;
}
}  // namespace zflow::cpu

#endif
