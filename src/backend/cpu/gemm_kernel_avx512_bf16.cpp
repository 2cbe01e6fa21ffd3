// gemm's AVX-512 BF16 kernel (Cooper Lake, Sapphire Rapids, Zen 4 and later): the AVX-512
// kernel's 12 x 32 tile, but each step multiplies pairs of depths rounded to bfloat16 with
// vdpbf16ps (two multiply-adds a lane, accumulated in float32), twice the float32 rate.
// Compiled for AVX-512 BF16 by a target pragma; gemm picks it at run time for bf16, fp8 and
// GGML-quantised weights (gemm_kernels.h).
#include <cstdint>

#include "backend/cpu/dequant_avx2.h"
#include "backend/cpu/gemm_blocking.h"
#include "core/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512bf16,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512bf16,avx2,fma,f16c")
#endif

#include "backend/cpu/gemm_avx512_ops.h"
#include "backend/cpu/gemm_microkernel.h"

namespace zflow::cpu {

namespace {

struct Avx512Bf16Ops : Avx512Ops {
  // A packed slot is two bfloat16 values; the float32 vector type only carries the bits.
  static V dot_pair(V a, V b, V acc) {
    return _mm512_dpbf16_ps(acc, reinterpret_cast<__m512bh>(a), reinterpret_cast<__m512bh>(b));
  }
  // vcvtne2ps2bf16 rounds 16 + 16 floats to nearest even (quieting NaNs) into the low and
  // high halves of one vector; vpermw then interleaves the halves into pairs.
  static void pair(const float* lo, const float* hi, float* out, int64_t n) {
    const __m512i interleave =
        _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,  //
                         23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m =
          n - i >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (n - i)) - 1);
      const __m512bh halves =
          _mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(m, hi + i), _mm512_maskz_loadu_ps(m, lo + i));
      const __m512i pairs = _mm512_permutexvar_epi16(interleave, reinterpret_cast<__m512i>(halves));
      _mm512_mask_storeu_epi32(out + i, m, pairs);
    }
  }
  static void to_bf16(const float* src, uint16_t* dst, int64_t n) {
    for (int64_t i = 0; i < n; i += 16)
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(dst + i),
          reinterpret_cast<__m256i>(_mm512_maskz_cvtneps_pbh(0xFFFF, _mm512_loadu_ps(src + i))));
  }
  static void transpose_pairs_16(const uint16_t* src, int64_t ld, float* dst, int64_t ldd) {
    transpose_words_16x16(src, ld * 2, dst, ldd * 4);
  }
};

constexpr GemmBlocking kB = kGemmBlockingAvx512Bf16;
static_assert(kB.nr % Avx512Bf16Ops::kWidth == 0);
static_assert(kB.kc % 2 == 0 && kB.kc <= kMaxPairDepth);

const GemmKernel kKernel{
    GemmIsa::Avx512Bf16,
    kB,
    gemm_detail::micro_kernel<Avx512Bf16Ops, kB.mr, kB.nr / Avx512Bf16Ops::kWidth>,
    gemm_detail::pack_a_pairs<Avx512Bf16Ops, kB.mr>,
    gemm_detail::pack_b_pairs<Avx512Bf16Ops, kB.nr>,
    2,
};

}  // namespace

const GemmKernel* gemm_kernel_avx512_bf16() {
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
const GemmKernel* gemm_kernel_avx512_bf16() {
  return nullptr;
}
}  // namespace zflow::cpu

#endif
