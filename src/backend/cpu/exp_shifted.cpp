// exp by range reduction, as Cephes' expf: x = k ln2 + r with |r| <= ln2 / 2 (ln2 split in
// two parts so k ln2 is exact), exp(r) from a degree-7 polynomial, then scaled by 2^k. The
// AVX-512 and AVX2 versions run 16 and 8 lanes of the same arithmetic; elsewhere libm's expf.
#include "backend/cpu/exp_shifted.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/cpu/cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace zflow::cpu {
namespace {

// Below this exp(x) is under float32's smallest normal number; the kernels return 0 there.
constexpr float kLowest = -87.33654f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
// exp(r) = 1 + r + r^2 (p0 + p1 r + ... + p5 r^5) on |r| <= ln2 / 2 (Cephes' coefficients).
constexpr float kP[6] = {5.0000001201e-1f, 1.6666665459e-1f, 4.1665795894e-2f,
                         8.3334519073e-3f, 1.3981999507e-3f, 1.9875691500e-4f};

double exp_shifted_libm(const float* in, float* out, int64_t n, float shift) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const float x = in[i] - shift;
    sum += out[i] = x < kLowest ? 0.0f : std::exp(x);
  }
  return sum;
}

// Four running maxima, so the loop is not one chain of dependent comparisons.
float row_max_portable(const float* x, int64_t n) {
  float m[4] = {x[0], x[0], x[0], x[0]};
  for (int64_t i = 1; i < n; ++i) m[i % 4] = std::max(m[i % 4], x[i]);
  return std::max(std::max(m[0], m[1]), std::max(m[2], m[3]));
}

#if defined(__x86_64__)

__attribute__((target("avx512f"))) float row_max_avx512(const float* x, int64_t n) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 m = lowest;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k =
        n - i >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (n - i)) - 1);
    // (maskz with every lane set: the plain form trips GCC 12's false uninitialised warning)
    m = _mm512_maskz_max_ps(0xFFFF, m, _mm512_mask_loadu_ps(lowest, k, x + i));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  return row_max_portable(lanes, 16);
}

__attribute__((target("avx2"))) float row_max_avx2(const float* x, int64_t n) {
  __m256 m = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m);
  float best = row_max_portable(lanes, 8);
  for (; i < n; ++i) best = std::max(best, x[i]);
  return best;
}

__attribute__((target("avx512f"))) __m512 exp16(__m512 x) {
  // (The zero-masked forms with every lane set here and below compute the plain ones, which
  // trip GCC 12's false "used uninitialized" warning.)
  const __m512 k = _mm512_maskz_roundscale_ps(0xFFFF, _mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kP[5]);
  for (int j = 4; j >= 0; --j) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kP[j]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kLowest), _CMP_GE_OQ);
  return _mm512_maskz_scalef_ps(normal, p, k);
}

// Adds the 16 floats of v to two float64 accumulators.
__attribute__((target("avx512f"))) void add_wide(__m512 v, __m512d& lo, __m512d& hi) {
  const __m512d pairs = _mm512_castps_pd(v);
  lo = _mm512_add_pd(lo, _mm512_maskz_cvtps_pd(
                             0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, pairs, 0))));
  hi = _mm512_add_pd(hi, _mm512_maskz_cvtps_pd(
                             0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, pairs, 1))));
}

__attribute__((target("avx512f"))) double exp_shifted_avx512(const float* in, float* out, int64_t n,
                                                             float shift) {
  const __m512 s = _mm512_set1_ps(shift);
  __m512d lo = _mm512_setzero_pd(), hi = _mm512_setzero_pd();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m =
        n - i >= 16 ? __mmask16{0xFFFF} : static_cast<__mmask16>((1u << (n - i)) - 1);
    // Lanes past n hold exp(-shift) of the zeros loaded there: masked out of store and sum.
    const __m512 e =
        _mm512_maskz_mov_ps(m, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, in + i), s)));
    _mm512_mask_storeu_ps(out + i, m, e);
    add_wide(e, lo, hi);
  }
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, _mm512_add_pd(lo, hi));
  double sum = 0.0;
  for (double lane : lanes) sum += lane;
  return sum;
}

__attribute__((target("avx2,fma"))) __m256 exp8(__m256 x) {
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kP[5]);
  for (int j = 4; j >= 0; --j) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kP[j]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // 2^k from its exponent bits: k is in [-126, 0] wherever the result is kept.
  const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(kLowest), _CMP_GE_OQ);
  const __m256i bits = _mm256_slli_epi32(
      _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_and_ps(k, normal)), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(bits)), normal);
}

__attribute__((target("avx2,fma"))) double exp_shifted_avx2(const float* in, float* out, int64_t n,
                                                            float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(in + i), s));
    _mm256_storeu_ps(out + i, e);
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(lo, hi));
  double sum = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  if (i < n) {  // the tail through a padded block of 8
    alignas(32) float x[8], e[8];
    for (int j = 0; j < 8; ++j) x[j] = i + j < n ? in[i + j] - shift : kLowest - 1.0f;
    _mm256_store_ps(e, exp8(_mm256_load_ps(x)));
    for (int64_t j = 0; i + j < n; ++j) sum += out[i + j] = e[j];
  }
  return sum;
}

#endif

}  // namespace

std::vector<ExpShiftedKernel> exp_shifted_kernels() {
  std::vector<ExpShiftedKernel> out{{"libm", exp_shifted_libm, row_max_portable}};
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma) out.push_back({"avx2", exp_shifted_avx2, row_max_avx2});
  if (f.avx512f) out.push_back({"avx512", exp_shifted_avx512, row_max_avx512});
#endif
  return out;
}

double exp_shifted(const float* in, float* out, int64_t n, float shift) {
  static const auto impl = exp_shifted_kernels().back().run;
  return impl(in, out, n, shift);
}

float row_max(const float* x, int64_t n) {
  static const auto impl = exp_shifted_kernels().back().max;
  return impl(x, n);
}

}  // namespace zflow::cpu
