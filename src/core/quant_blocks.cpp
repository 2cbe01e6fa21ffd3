#include "core/quant_blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/quant_block_values.h"

// Bit-exact agreement with gguf-py needs every product and sum rounded to float32 on its
// own: no contraction of a * b + c into a fused multiply-add (GCC contracts by default on
// targets that have FMA, e.g. aarch64).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#elif defined(__clang__)
#pragma clang fp contract(off)
#endif

namespace zflow {

namespace {

constexpr int kQK = 256;  // values per k-quant block

using quant::half_at;
using quant::scale_min_k4;

void put_half(uint8_t* p, float x) {
  const uint16_t h = f32_to_f16_bits(x);
  p[0] = static_cast<uint8_t>(h);
  p[1] = static_cast<uint8_t>(h >> 8);
}

// --- dequantisation, one block: every value by core/quant_block_values.h ---------------

using DequantFn = void (*)(const uint8_t*, float*);

// A block's values, sub-block by sub-block with the scale computed once each; y does not alias
// the block, so the codes' loop vectorises. A k-quant block is copied first: its packed scales,
// read for every sub-block, then stay in registers (Q6_K 0.58 -> 0.67 G values/s on Zen 5), while
// a legacy block reads its one scale straight from memory (Q8_0 3.1 -> 6.0).
template <quant::BlockKind K>
void dequant_block(const uint8_t* __restrict b, float* __restrict y) {
  using L = quant::Layout<K>;
  constexpr bool kCopy = quant::block_values(K) == 256;
  uint8_t copy[kCopy ? quant::block_bytes(K) : 1];
  if constexpr (kCopy) std::memcpy(copy, b, sizeof copy);
  const uint8_t* block = kCopy ? copy : b;
  for (int s = 0; s < quant::block_values(K) / L::kSubValues; ++s) {
    const quant::SubScale scale = L::scale(block, s);
    for (int j = s * L::kSubValues; j < (s + 1) * L::kSubValues; ++j)
      y[j] = quant::scaled(scale, L::code(block, j));
  }
}

DequantFn dequant_fn(DType type) {
  switch (type) {
    case DType::Q4_0:
      return dequant_block<quant::BlockKind::Q4_0>;
    case DType::Q4_1:
      return dequant_block<quant::BlockKind::Q4_1>;
    case DType::Q5_0:
      return dequant_block<quant::BlockKind::Q5_0>;
    case DType::Q5_1:
      return dequant_block<quant::BlockKind::Q5_1>;
    case DType::Q8_0:
      return dequant_block<quant::BlockKind::Q8_0>;
    case DType::Q2_K:
      return dequant_block<quant::BlockKind::Q2_K>;
    case DType::Q3_K:
      return dequant_block<quant::BlockKind::Q3_K>;
    case DType::Q4_K:
      return dequant_block<quant::BlockKind::Q4_K>;
    case DType::Q5_K:
      return dequant_block<quant::BlockKind::Q5_K>;
    case DType::Q6_K:
      return dequant_block<quant::BlockKind::Q6_K>;
    default:
      fail("[quant] {} is not a block-quantised type", dtype_name(type));
  }
}

// --- quantisation of the legacy types, as ggml's reference quantisers ------------------

// The value of largest magnitude, the first one on ties (numpy argmax of abs).
float signed_absmax(const float* x, int n) {
  float best = x[0];
  for (int j = 1; j < n; ++j)
    if (std::fabs(x[j]) > std::fabs(best)) best = x[j];
  return best;
}

// Round half away from zero (ggml's roundf and lroundf, gguf-py's np_roundf) for |v| < 2^31,
// without the libm call that made it most of a quantiser's time: the fraction left by
// truncation is exact.
int round_half_away(float v) {
  const int t = static_cast<int>(v);
  const float fraction = v - static_cast<float>(t);
  return t + (fraction >= 0.5f) - (fraction <= -0.5f);
}

float inverse_or_zero(float d) {
  return d == 0.0f ? 0.0f : 1.0f / d;
}

// trunc(v) as an unsigned code clipped to [0, top] (numpy: trunc, astype(uint8), clip).
uint8_t code(float v, int top) {
  const float t = std::trunc(v);
  const int q = t <= 0.0f ? 0 : (t >= 255.0f ? 255 : static_cast<int>(t));
  return static_cast<uint8_t>(std::min(q, top));
}

void pack_nibbles32(const uint8_t* q, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | (q[j + 16] << 4));
}
void pack_high_bits32(const uint8_t* q, uint8_t* qh) {
  uint32_t bits = 0;
  for (int j = 0; j < 32; ++j) bits |= static_cast<uint32_t>((q[j] >> 4) & 1) << j;
  for (int i = 0; i < 4; ++i) qh[i] = static_cast<uint8_t>(bits >> (8 * i));
}

void quant_q4_0(const float* x, uint8_t* b) {
  const float d = signed_absmax(x, 32) / -8.0f;
  const float id = inverse_or_zero(d);
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = code(x[j] * id + 8.5f, 15);
  put_half(b, d);
  pack_nibbles32(q, b + 2);
}

void quant_q4_1(const float* x, uint8_t* b) {
  const float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
  const float d = (hi - lo) / 15.0f;
  const float id = inverse_or_zero(d);
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = code((x[j] - lo) * id + 0.5f, 15);
  put_half(b, d);
  put_half(b + 2, lo);
  pack_nibbles32(q, b + 4);
}

void quant_q5_0(const float* x, uint8_t* b) {
  const float d = signed_absmax(x, 32) / -16.0f;
  const float id = inverse_or_zero(d);
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = code(x[j] * id + 16.5f, 31);
  put_half(b, d);
  pack_high_bits32(q, b + 2);
  pack_nibbles32(q, b + 6);
}

void quant_q5_1(const float* x, uint8_t* b) {
  const float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
  const float d = (hi - lo) / 31.0f;
  const float id = inverse_or_zero(d);
  uint8_t q[32];
  for (int j = 0; j < 32; ++j) q[j] = code((x[j] - lo) * id + 0.5f, 31);
  put_half(b, d);
  put_half(b + 2, lo);
  pack_high_bits32(q, b + 4);
  pack_nibbles32(q, b + 8);
}

void quant_q8_0(const float* x, uint8_t* b) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127.0f;
  const float id = inverse_or_zero(d);
  put_half(b, d);
  for (int j = 0; j < 32; ++j)
    b[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_half_away(x[j] * id)));
}

// --- k-quant quantisers ------------------------------------------------------------------

// Fits x ~ scale * q - min with q in [0, top] and min >= 0 over n values: a few candidate
// scales around (max - lo) / top, each refined by least squares on its codes; the best by
// squared error wins.
void fit_scale_min(const float* x, int n, int top, float& scale, float& min) {
  float lo = *std::min_element(x, x + n), hi = *std::max_element(x, x + n);
  lo = std::min(lo, 0.0f);  // the stored min is subtracted and unsigned: offset <= 0
  if (hi <= lo) {
    scale = 0.0f;
    min = -lo;
    return;
  }
  float best_err = INFINITY;
  scale = (hi - lo) / top;
  min = -lo;
  for (int step = -4; step <= 4; ++step) {
    const float iscale = (top + 0.1f * step) / (hi - lo);
    double sq = 0, sq2 = 0, sx = 0, sqx = 0;
    int q[32];
    for (int j = 0; j < n; ++j) {
      q[j] = std::clamp(round_half_away((x[j] - lo) * iscale), 0, top);
      sq += q[j];
      sq2 += static_cast<double>(q[j]) * q[j];
      sx += x[j];
      sqx += q[j] * static_cast<double>(x[j]);
    }
    const double det = n * sq2 - sq * sq;
    if (det <= 0) continue;
    double s = (n * sqx - sq * sx) / det;
    double m = (s * sq - sx) / n;
    if (m < 0) {  // the fit wants a positive offset, which the format cannot hold
      m = 0;
      s = sq2 > 0 ? sqx / sq2 : 0;
    }
    double err = 0;
    for (int j = 0; j < n; ++j) {
      const double r = s * q[j] - m - x[j];
      err += r * r;
    }
    if (err < best_err && s > 0) {
      best_err = static_cast<float>(err);
      scale = static_cast<float>(s);
      min = static_cast<float>(m);
    }
  }
}

// Q4_K (top 15) and Q5_K (top 31): per-sub-block scales and mins, themselves stored as
// 6-bit multiples of the block's d and dmin.
void quant_k_scale_min(const float* x, uint8_t* b, int top) {
  float scales[8], mins[8];
  for (int s = 0; s < 8; ++s) fit_scale_min(x + 32 * s, 32, top, scales[s], mins[s]);
  const float max_scale = *std::max_element(scales, scales + 8);
  const float max_min = *std::max_element(mins, mins + 8);
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t sc[8], mn[8];
  // Scales round up, so that the top code still reaches each sub-block's largest value (a
  // scale rounded down would clip it by up to a sixth for small scales); mins to nearest.
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<uint8_t>(std::min(63, static_cast<int>(std::ceil(inv_scale * scales[s]))));
    mn[s] = static_cast<uint8_t>(std::min(63, round_half_away(inv_min * mins[s])));
  }
  put_half(b, max_scale / 63.0f);
  put_half(b + 2, max_min / 63.0f);
  uint8_t* packed = b + 4;
  for (int s = 0; s < 4; ++s) {
    packed[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
    packed[s + 4] = static_cast<uint8_t>(mn[s] | ((mn[s + 4] >> 4) << 6));
    packed[s + 8] = static_cast<uint8_t>((sc[s + 4] & 0x0F) | ((mn[s + 4] & 0x0F) << 4));
  }
  // Codes against the scales as stored (fp16 d and dmin times the 6-bit integers).
  const float d = half_at(b), dmin = half_at(b + 2);
  const bool five_bit = top == 31;
  uint8_t* qh = b + 16;
  uint8_t* qs = five_bit ? b + 48 : b + 16;
  std::memset(qs, 0, 128);
  if (five_bit) std::memset(qh, 0, 32);
  for (int s = 0; s < 8; ++s) {
    int scale, min;
    scale_min_k4(packed, s, scale, min);
    const float dl = d * scale, ml = dmin * min;
    for (int l = 0; l < 32; ++l) {
      const int q = dl > 0 ? std::clamp(round_half_away((x[32 * s + l] + ml) / dl), 0, top) : 0;
      qs[32 * (s / 2) + l] |= static_cast<uint8_t>((q & 0x0F) << (4 * (s % 2)));
      if (five_bit) qh[l] |= static_cast<uint8_t>(((q >> 4) & 1) << s);
    }
  }
}

void quant_q4_k(const float* x, uint8_t* b) {
  quant_k_scale_min(x, b, 15);
}
void quant_q5_k(const float* x, uint8_t* b) {
  quant_k_scale_min(x, b, 31);
}

// Fits x ~ scale * q with q in [-32, 31] over 16 values: candidate scales mapping the
// largest-magnitude value near -32 (the wider side), each refined by least squares.
float fit_scale_signed(const float* x) {
  const float vmax = signed_absmax(x, 16);
  if (vmax == 0.0f) return 0.0f;
  float best_scale = vmax / -32.0f, best_err = INFINITY;
  for (int step = -4; step <= 4; ++step) {
    const float iscale = (-32.0f + 0.25f * step) / vmax;
    double sqx = 0, sq2 = 0;
    int q[16];
    for (int j = 0; j < 16; ++j) {
      q[j] = std::clamp(round_half_away(x[j] * iscale), -32, 31);
      sqx += q[j] * static_cast<double>(x[j]);
      sq2 += static_cast<double>(q[j]) * q[j];
    }
    if (sq2 == 0) continue;
    const double s = sqx / sq2;
    double err = 0;
    for (int j = 0; j < 16; ++j) {
      const double r = s * q[j] - x[j];
      err += r * r;
    }
    if (err < best_err) {
      best_err = static_cast<float>(err);
      best_scale = static_cast<float>(s);
    }
  }
  return best_scale;
}

void quant_q6_k(const float* x, uint8_t* b) {
  float scales[16];
  for (int s = 0; s < 16; ++s) scales[s] = fit_scale_signed(x + 16 * s);
  const float vmax = signed_absmax(scales, 16);
  // int8 scales: the largest-magnitude one maps to -128 when negative, else to 127.
  const float d = vmax < 0 ? vmax / -128.0f : vmax / 127.0f;
  const float id = inverse_or_zero(d);
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  for (int s = 0; s < 16; ++s)
    sc[s] = static_cast<int8_t>(std::clamp(round_half_away(id * scales[s]), -128, 127));
  put_half(b + 208, d);
  const float ds = half_at(b + 208);
  uint8_t* ql = b;
  uint8_t* qh = b + 128;
  std::memset(ql, 0, 192);
  for (int e = 0; e < kQK; ++e) {
    const float dl = ds * sc[e / 16];
    const int q = dl != 0.0f ? std::clamp(round_half_away(x[e] / dl), -32, 31) + 32 : 32;
    const int h = e / 128, r = e % 128;
    ql[64 * h + r % 64] |= static_cast<uint8_t>((q & 0x0F) << (4 * (r / 64)));
    qh[32 * h + r % 32] |= static_cast<uint8_t>((q >> 4) << (2 * (r / 32)));
  }
}

using QuantFn = void (*)(const float*, uint8_t*);

QuantFn quant_fn(DType type) {
  switch (type) {
    case DType::Q4_0:
      return quant_q4_0;
    case DType::Q4_1:
      return quant_q4_1;
    case DType::Q5_0:
      return quant_q5_0;
    case DType::Q5_1:
      return quant_q5_1;
    case DType::Q8_0:
      return quant_q8_0;
    case DType::Q4_K:
      return quant_q4_k;
    case DType::Q5_K:
      return quant_q5_k;
    case DType::Q6_K:
      return quant_q6_k;
    default:
      return nullptr;
  }
}

}  // namespace

void dequantize_blocks(DType type, const void* src, float* dst, int64_t n) {
  const DequantFn fn = dequant_fn(type);
  const int64_t block = dtype_block_size(type);
  const size_t bytes = dtype_block_bytes(type);
  ZF_CHECK(n % block == 0, "[quant] {} values of {} are not whole blocks of {}", n,
           dtype_name(type), block);
  const auto* p = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n / block; ++i) fn(p + i * bytes, dst + i * block);
}

// BlockKind lists the block types in DType's order.
static_assert(static_cast<int>(DType::Q2_K) - static_cast<int>(DType::Q4_0) ==
              static_cast<int>(quant::BlockKind::Q2_K));
static_assert(static_cast<int>(DType::Q6_K) - static_cast<int>(DType::Q4_0) ==
              static_cast<int>(quant::BlockKind::Q6_K));

quant::BlockKind block_kind(DType type) {
  ZF_CHECK(dtype_is_quantized(type), "[quant] {} is not a block-quantised type", dtype_name(type));
  return static_cast<quant::BlockKind>(static_cast<int>(type) - static_cast<int>(DType::Q4_0));
}

bool can_quantize(DType type) {
  return quant_fn(type) != nullptr;
}

void quantize_blocks(DType type, const float* src, void* dst, int64_t n) {
  const QuantFn fn = quant_fn(type);
  ZF_CHECK(fn != nullptr,
           "[quant] zflow cannot quantise to {}; it writes Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, "
           "Q5_K and Q6_K",
           dtype_name(type));
  const int64_t block = dtype_block_size(type);
  const size_t bytes = dtype_block_bytes(type);
  ZF_CHECK(n % block == 0, "[quant] {} values are not whole blocks of {} for {}", n, block,
           dtype_name(type));
  auto* p = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n / block; ++i) fn(src + i * block, p + i * bytes);
}

}  // namespace zflow
