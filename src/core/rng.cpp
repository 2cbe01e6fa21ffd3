// PyTorch-compatible mt19937 and randn; see rng.h for what torch does and why each step
// below is the way it is. Every float operation is its own statement and rounding step:
// the bits must follow torch's operation order, so nothing here may be reassociated or
// contracted into FMA behind our back (the explicit fused steps use std::fma).
#include "core/rng.h"

#include <bit>
#include <cmath>
#include <cstdlib>
#include <numbers>
#include <string_view>

#include "core/error.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace zflow {
namespace {

// ---- The Cephes float log / sincos of torch's AVX2 normal kernel (avx_mathfun.h) ----------
// torch's AVX2 kernels are built with -mfma by GCC, which contracts a multiply whose only use
// is an add into one fused multiply-add; `fused` marks exactly those steps. (Checked against
// torch 2.15: with plain multiply-then-add about 1% of the outputs differ in the last bit.)
float fused(float a, float b, float c) {
  return std::fma(a, b, c);
}

float bits_to_float(uint32_t b) {
  return std::bit_cast<float>(b);
}
uint32_t float_to_bits(float f) {
  return std::bit_cast<uint32_t>(f);
}

// Natural log for x in (0, 1]: x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then a degree-9
// polynomial in m - 1 and e * ln 2 split into a short exact part and a small correction.
float cephes_log(float x) {
  x = std::fmax(x, bits_to_float(0x00800000));  // smallest normal float
  const uint32_t bits = float_to_bits(x);
  const int32_t biased_exponent = static_cast<int32_t>(bits >> 23);
  // Keep the mantissa, with exponent of 0.5: m in [0.5, 1).
  x = bits_to_float((bits & ~0x7f800000u) | 0x3f000000u);
  float e = static_cast<float>(biased_exponent - 0x7f);
  e = e + 1.0f;
  // Below sqrt(1/2): m -> 2m - 1 computed as (m - 1) + m, and one less in the exponent.
  const bool small = x < 0.707106781186547524f;
  const float m = small ? x : 0.0f;
  x = x - 1.0f;
  e = e - (small ? 1.0f : 0.0f);
  x = x + m;
  const float z = x * x;
  float y = 7.0376836292E-2f;
  y = fused(y, x, -1.1514610310E-1f);
  y = fused(y, x, 1.1676998740E-1f);
  y = fused(y, x, -1.2420140846E-1f);
  y = fused(y, x, 1.4249322787E-1f);
  y = fused(y, x, -1.6668057665E-1f);
  y = fused(y, x, 2.0000714765E-1f);
  y = fused(y, x, -2.4999993993E-1f);
  y = fused(y, x, 3.3333331174E-1f);
  y = y * x;
  y = fused(y, z, e * -2.12194440e-4f);
  y = fused(z, -0.5f, y);  // y - z * 0.5 (z * 0.5 is exact, fused or not)
  x = x + y;
  x = fused(e, 0.693359375f, x);
  return x;
}

// sin and cos of x >= 0 at once: reduce by multiples of pi/4 in three exact-ish pieces
// (Cody-Waite), evaluate both Cephes polynomials and pick per octant.
void cephes_sincos(float x, float* sin_out, float* cos_out) {
  // x >= 0 here (2 pi * uniform), so the sign handling of the general routine is a no-op.
  const float scaled = x * 1.27323954473516f;  // 4 / pi
  int32_t j = static_cast<int32_t>(scaled);    // truncation
  j = (j + 1) & ~1;
  const float y = static_cast<float>(j);
  const bool sin_swaps = (j & 4) != 0;
  const bool cos_swaps = ((j - 2) & 4) == 0;
  const bool use_cos_poly_for_sin = (j & 2) == 0;  // else the sine polynomial gives the sine

  x = fused(y, -0.78515625f, x);
  x = fused(y, -2.4187564849853515625e-4f, x);
  x = fused(y, -3.77489497744594108e-8f, x);

  const float z = x * x;
  float c = 2.443315711809948E-005f;
  c = fused(c, z, -1.388731625493765E-003f);
  c = fused(c, z, 4.166664568298827E-002f);
  c = c * z;
  c = fused(c, z, -(z * 0.5f));
  c = c + 1.0f;

  float s = -1.9515295891E-4f;
  s = fused(s, z, 8.3321608736E-3f);
  s = fused(s, z, -1.6666654611E-1f);
  s = s * z;
  s = fused(s, x, x);

  float sin_value = use_cos_poly_for_sin ? s : c;
  float cos_value = use_cos_poly_for_sin ? c : s;
  if (sin_swaps) sin_value = -sin_value;
  if (cos_swaps) cos_value = -cos_value;
  *sin_out = sin_value;
  *cos_out = cos_value;
}

// Box-Muller over one block of 16 uniforms in place, as torch's AVX2 kernel computes it.
void box_muller16_avx2(float* data) {
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];  // [0, 1) -> (0, 1] for the log
    const float radius = std::sqrt(-2.0f * cephes_log(u1));
    const float theta = two_pi * data[j + 8];
    float s, c;
    cephes_sincos(theta, &s, &c);
    data[j] = radius * c;
    data[j + 8] = radius * s;
  }
}

// The same with libm, as torch's DEFAULT and AVX512 kernels compute it. Note the angle is
// formed in double (2.0f * pi<double> * u2) and rounded to float once.
void box_muller16_libm(float* data) {
  for (int j = 0; j < 8; ++j) {
    const float u1 = 1.0f - data[j];
    const float radius = std::sqrt(-2.0f * std::log(u1));
    const float theta = static_cast<float>(2.0 * std::numbers::pi * data[j + 8]);
    data[j] = radius * std::cos(theta);
    data[j + 8] = radius * std::sin(theta);
  }
}

}  // namespace

NormalMath torch_normal_math_for_this_cpu() {
  if (const char* forced = std::getenv("ATEN_CPU_CAPABILITY")) {
    const std::string_view name(forced);
    if (name == "avx2") return NormalMath::Avx2Cephes;
    if (name == "default" || name == "avx512") return NormalMath::Libm;
  }
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool fma = __builtin_cpu_supports("fma");
  if (fma && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq")) {
    return NormalMath::Libm;
  }
  if (fma && __builtin_cpu_supports("avx2")) return NormalMath::Avx2Cephes;
#endif
  return NormalMath::Libm;
}

Generator::Generator(uint64_t seed, NormalMath math) : math_(math) {
  manual_seed(seed);
}

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  // torch keeps the 64-bit seed but the engine only sees its low 32 bits.
  engine_.seed(static_cast<uint32_t>(seed));
  cached_normal_.reset();
}

uint32_t Generator::random() {
  return engine_.next();
}

uint64_t Generator::random64() {
  const uint64_t high = random();
  const uint64_t low = random();
  return (high << 32) | low;
}

// at::normal_distribution<double>: one Box-Muller pair per two calls, the sine cached.
double Generator::scalar_normal() {
  if (cached_normal_) {
    const double value = *cached_normal_;
    cached_normal_.reset();
    return value;
  }
  constexpr double k2Pow53Inv = 1.0 / 9007199254740992.0;
  const double u1 = static_cast<double>(random64() & ((1ULL << 53) - 1)) * k2Pow53Inv;
  const double u2 = static_cast<double>(random64() & ((1ULL << 53) - 1)) * k2Pow53Inv;
  const double radius = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * std::numbers::pi * u1;
  cached_normal_ = radius * std::sin(theta);
  return radius * std::cos(theta);
}

void Generator::normal_fill(float* out, int64_t n) {
  // Uniforms in [0, 1) from the low 24 bits of each draw.
  constexpr float k2Pow24Inv = 1.0f / 16777216.0f;
  auto uniform = [this] { return static_cast<float>(random() & 0xffffffu) * k2Pow24Inv; };
  auto box_muller16 = math_ == NormalMath::Avx2Cephes ? box_muller16_avx2 : box_muller16_libm;
  for (int64_t i = 0; i < n; ++i) out[i] = uniform();
  for (int64_t i = 0; i + 16 <= n; i += 16) box_muller16(out + i);
  if (n % 16 != 0) {
    float* tail = out + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform();
    box_muller16(tail);
  }
}

void Generator::randn(float* out, int64_t n) {
  ZF_CHECK(n >= 0, "[randn] element count must be >= 0, got {}", n);
  if (n >= 16) {
    normal_fill(out, n);
    return;
  }
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(scalar_normal());
}

Tensor Generator::randn(const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::F32);
  randn(t.data<float>(), t.numel());
  return t;
}

Tensor randn(const Shape& shape, uint64_t seed, NormalMath math) {
  Generator g(seed, math);
  return g.randn(shape);
}

}  // namespace zflow
