// The micro-kernel and packing routines of gemm, written once over a small vector
// interface `Ops` and instantiated by each gemm_kernel_<isa>.cpp for its instruction set.
// Sharing the code means the scalar and AVX2 instantiations, which every x86 machine
// can test, check the same logic the AVX-512 one runs.
//
// Include this after the kernel file's target pragma and after every standard header
// (standard templates must not be compiled for a wider instruction set than baseline).
// Ops supplies:
//   using V; static constexpr int kWidth;           floats per vector
//   V zero(); V load(const float*); void store(float*, V);   unaligned
//   V broadcast(float); V fma(V a, V b, V c) = a * b + c; V mul(V, V);
//   void widen_f16(const uint16_t* src, float* dst, int64_t n);
// and may supply, for float8 (F8_E4M3 / F8_E5M2) faster than a table lookup:
//   void widen_f8(DType type, const uint8_t* src, float* dst, int64_t n);
// and, for GGML block types it dequantises faster than core/quant_blocks does:
//   bool dequantize(DType type, const uint8_t* blocks, float* dst, int64_t n);  // false: not
//   handled
// A kernel that multiplies bfloat16 pairs (depth_per_slot 2, packed by pack_a_pairs and
// pack_b_pairs) supplies the step of its depth loop and may supply a faster pairing:
//   V dot_pair(V a, V b, V c) = c + a.lo * b.lo + a.hi * b.hi in every 32-bit lane;
//   void pair(const float* lo, const float* hi, float* out, int64_t n);  // see pair_rows
//   void transpose_pairs_16(const uint16_t* src, int64_t ld, float* dst, int64_t ldd);
//     16 rows of 16 bfloat16 pairs (row r at src + r * ld) to 16 rows of 16 slots:
//     dst[i * ldd + r] = pair i of row r
//   void to_bf16(const float* src, uint16_t* dst, int64_t n);  // n a multiple of 16, rounded
//     to nearest even as pair() rounds
// Ops types live in an anonymous namespace, so every instantiation is private to its file.
#pragma once

#include <array>

#include "backend/cpu/gemm_kernels.h"
#include "core/quant_blocks.h"

namespace zflow::cpu::gemm_detail {

// One step of the micro-kernel's depth loop: acc + a * b over one packed slot.
template <class Ops>
typename Ops::V slot_step(typename Ops::V a, typename Ops::V b, typename Ops::V acc) {
  if constexpr (requires { Ops::dot_pair(a, b, acc); })
    return Ops::dot_pair(a, b, acc);
  else
    return Ops::fma(a, b, acc);
}

// C tile (MR x NV * kWidth) = alpha * sum over ks slots of a column of A times a row of B,
// plus beta * C. a: ks x MR packed, b: ks x NR packed, c: row-major with stride ldc.
template <class Ops, int MR, int NV>
void micro_kernel(int64_t ks, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                  float beta) {
  using V = typename Ops::V;
  constexpr int W = Ops::kWidth;
  constexpr int NR = NV * W;
  // C is read (and written) only after the kc loop; when C is bigger than the caches that
  // read would miss all the way to memory and stall. Asking for it now overlaps the miss
  // with the multiply-adds.
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Ops::zero();
  for (int64_t p = 0; p < ks; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V av = Ops::broadcast(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = slot_step<Ops>(av, bv[v], acc[i][v]);
    }
    a += MR;
    b += NR;
  }
  const V valpha = Ops::broadcast(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Ops::store(c + i * ldc + v * W, Ops::mul(acc[i][v], valpha));
  } else {
    const V vbeta = Ops::broadcast(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* cp = c + i * ldc + v * W;
        Ops::store(cp, Ops::fma(Ops::load(cp), vbeta, Ops::mul(acc[i][v], valpha)));
      }
  }
}

// Packs rows [i0, i0 + mc) x depths [p0, p0 + kc) of op(A) into slivers of MR rows.
template <int MR>
void pack_a(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out) {
  for (int64_t is = 0; is < mc; is += MR, out += kc * MR) {
    const int64_t rows = mc - is < MR ? mc - is : MR;
    const int64_t i = i0 + is;
    if (g.trans_a) {  // A is K x M: each depth holds the sliver's rows contiguously
      for (int64_t p = 0; p < kc; ++p) {
        const float* src = g.a + (p0 + p) * g.lda + i;
        float* dst = out + p * MR;
        for (int64_t r = 0; r < rows; ++r) dst[r] = src[r];
        for (int64_t r = rows; r < MR; ++r) dst[r] = 0.0f;
      }
    } else if (rows == MR) {  // A is M x K: MR rows read side by side
      const float* src = g.a + i * g.lda + p0;
      for (int64_t p = 0; p < kc; ++p)
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) out[p * MR + r] = src[r * g.lda + p];
    } else {
      const float* src = g.a + i * g.lda + p0;
      for (int64_t p = 0; p < kc; ++p) {
        for (int64_t r = 0; r < rows; ++r) out[p * MR + r] = src[r * g.lda + p];
        for (int64_t r = rows; r < MR; ++r) out[p * MR + r] = 0.0f;
      }
    }
  }
}

// The float32 value of every float8 code of `type` (F8_E4M3 or F8_E5M2).
inline const std::array<float, 256>& float8_table(DType type) {
  static const auto make = [](float (*widen)(uint8_t)) {
    std::array<float, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = widen(static_cast<uint8_t>(c));
    return t;
  };
  static const std::array<float, 256> e4m3 = make(f8e4m3_bits_to_f32);
  static const std::array<float, 256> e5m2 = make(f8e5m2_bits_to_f32);
  return type == DType::F8_E4M3 ? e4m3 : e5m2;
}

// Widens n stored values of B (float32, bfloat16, float16, float8 or int8) to float32. A float8
// weight's per-tensor scale and an int8 weight's row scales are not applied here: gemm's
// caller folds the one into alpha and applies the others to the output.
template <class Ops>
void widen(const void* src, DType type, float* dst, int64_t n) {
  if (dtype_is_float8(type)) {
    const auto* s = static_cast<const uint8_t*>(src);
    if constexpr (requires { Ops::widen_f8(type, s, dst, n); }) {
      Ops::widen_f8(type, s, dst, n);
    } else {
      const std::array<float, 256>& table = float8_table(type);
      for (int64_t i = 0; i < n; ++i) dst[i] = table[s[i]];
    }
  } else if (type == DType::F32) {
    const auto* s = static_cast<const float*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = s[i];
  } else if (type == DType::I8) {
    const auto* s = static_cast<const int8_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(s[i]);
  } else if (type == DType::BF16) {  // bfloat16 is the top half of a float32: exact
    const auto* s = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) dst[i] = __builtin_bit_cast(float, uint32_t{s[i]} << 16);
  } else {
    Ops::widen_f16(static_cast<const uint16_t*>(src), dst, n);
  }
}

// Dequantises n values (whole blocks) of a GGML block type: the kernel's own code when it has
// one for the type, else the portable definition.
template <class Ops>
void dequantize(DType type, const uint8_t* blocks, float* dst, int64_t n) {
  if (type == DType::I8) {  // int8 rows (their scales are applied to gemm's output)
    widen<Ops>(blocks, type, dst, n);
    return;
  }
  if constexpr (requires { Ops::dequantize(type, blocks, dst, n); }) {
    if (Ops::dequantize(type, blocks, dst, n)) return;
  }
  dequantize_blocks(type, blocks, dst, n);
}

// pack_b for a Linear weight in a GGML block type: B is N x K with blocks along K, and
// gemm keeps p0 and kc multiples of the block size, so each row's depth range is whole
// blocks. Each sliver row is dequantised a run at a time into a small buffer, then the runs
// are interleaved column by column; the weight itself stays quantised in memory.
// Asks for the bytes of `count` values of `type` at `p`, a run of a later weight row: the
// packers read each row's run (a few cache lines, too short for the hardware prefetcher to
// learn) while the weights stream from memory.
inline void prefetch_run(const uint8_t* p, DType type, int64_t count) {
  const size_t bytes = dtype_nbytes(type, count);
  for (size_t at = 0; at < bytes; at += 64) __builtin_prefetch(p + at, 0, 0);
}

// How many weight rows ahead the packers prefetch.
inline constexpr int64_t kPrefetchRowsAhead = 4;

// The depths the block-quantised packers dequantise at a time: one k-quant block, eight legacy
// ones.
inline constexpr int64_t kBlockRun = 256;

// Dequantises `len` values (whole blocks; any run for I8) of Linear weight row `row` from depth
// `depth` into
// `dst`, first asking for the same run of the row kPrefetchRowsAhead on when it is below
// `row_end`.
template <class Ops>
void dequantize_row_run(const GemmArgs& g, int64_t row, int64_t row_end, int64_t depth, int64_t len,
                        float* dst) {
  const auto* b = static_cast<const uint8_t*>(g.b);
  const size_t row_bytes = dtype_nbytes(g.b_dtype, g.ldb);
  const size_t skip = dtype_nbytes(g.b_dtype, depth);
  if (row + kPrefetchRowsAhead < row_end)
    prefetch_run(b + (row + kPrefetchRowsAhead) * row_bytes + skip, g.b_dtype, len);
  dequantize<Ops>(g.b_dtype, b + row * row_bytes + skip, dst, len);
}

template <class Ops, int NR>
void pack_b_blocks(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  constexpr int64_t kRun = kBlockRun;
  alignas(64) float run[NR * kRun];
  for (int64_t js = 0; js < nc; js += NR, out += kc * NR) {
    const int64_t cols = nc - js < NR ? nc - js : NR;
    const int64_t j = j0 + js;
    for (int64_t pb = 0; pb < kc; pb += kRun) {
      const int64_t len = kc - pb < kRun ? kc - pb : kRun;
      for (int64_t c = 0; c < cols; ++c)
        dequantize_row_run<Ops>(g, j + c, j + cols, p0 + pb, len, run + c * kRun);
      for (int64_t c = cols; c < NR; ++c)
        for (int64_t p = 0; p < len; ++p) run[c * kRun + p] = 0.0f;
      float* dst = out + pb * NR;
      for (int64_t p = 0; p < len; ++p)
#pragma GCC unroll 32
        for (int c = 0; c < NR; ++c) dst[p * NR + c] = run[c * kRun + p];
    }
  }
}

// Packs depths [p0, p0 + kc) x columns [j0, j0 + nc) of op(B) into slivers of NR columns,
// widened to float32 and zero-padded.
template <class Ops, int NR>
void pack_b(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  if (dtype_is_quantized(g.b_dtype)) {
    pack_b_blocks<Ops, NR>(g, p0, kc, j0, nc, out);
    return;
  }
  const size_t esize = dtype_size(g.b_dtype);
  const char* b = static_cast<const char*>(g.b);
  auto at = [&](int64_t row, int64_t col) { return b + (row * g.ldb + col) * esize; };
  for (int64_t js = 0; js < nc; js += NR, out += kc * NR) {
    const int64_t cols = nc - js < NR ? nc - js : NR;
    const int64_t j = j0 + js;
    if (!g.trans_b) {  // B is K x N: each depth holds the sliver's columns contiguously
      for (int64_t p = 0; p < kc; ++p) {
        float* dst = out + p * NR;
        widen<Ops>(at(p0 + p, j), g.b_dtype, dst, cols);
        for (int64_t c = cols; c < NR; ++c) dst[c] = 0.0f;
      }
      continue;
    }
    // B is N x K (a Linear weight): widen runs of each of the sliver's rows into a
    // small buffer, then interleave them column by column.
    constexpr int64_t kRun = 64;
    float run[NR * kRun];
    for (int64_t pb = 0; pb < kc; pb += kRun) {
      const int64_t len = kc - pb < kRun ? kc - pb : kRun;
      for (int64_t c = 0; c < cols; ++c)
        widen<Ops>(at(j + c, p0 + pb), g.b_dtype, run + c * kRun, len);
      for (int64_t c = cols; c < NR; ++c)
        for (int64_t p = 0; p < len; ++p) run[c * kRun + p] = 0.0f;
      float* dst = out + pb * NR;
      for (int64_t p = 0; p < len; ++p)
#pragma GCC unroll 32
        for (int c = 0; c < NR; ++c) dst[p * NR + c] = run[c * kRun + p];
    }
  }
}

// --- bfloat16 pairs ------------------------------------------------------------------------
// Kernels with depth_per_slot 2 pack exactly as the float32 kernels do, one sliver at a
// time into a scratch block, then fold each two consecutive depth rows of the sliver into
// one row of pairs. Every B dtype thus goes through the same widening as elsewhere, and
// bfloat16 weights come back bit for bit.

// out[i] = the slot pairing lo[i] (low half) and hi[i], each rounded to bfloat16 to nearest
// even, for i < n.
template <class Ops>
void pair_rows(const float* lo, const float* hi, float* out, int64_t n) {
  if constexpr (requires { Ops::pair(lo, hi, out, n); }) {
    Ops::pair(lo, hi, out, n);
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t bits = uint32_t{f32_to_bf16_bits(lo[i])} | uint32_t{f32_to_bf16_bits(hi[i])}
                                                                    << 16;
      out[i] = __builtin_bit_cast(float, bits);
    }
  }
}

// Folds a packed float32 sliver (kc x W) into ceil(kc / 2) x W pairs; an odd last depth
// pairs with zero.
template <class Ops, int W>
void fold_pairs(const float* in, int64_t kc, float* out) {
  alignas(64) static constexpr float kZeros[W] = {};
  for (int64_t p = 0; p < kc; p += 2, out += W)
    pair_rows<Ops>(in + p * W, p + 1 < kc ? in + (p + 1) * W : kZeros, out, W);
}

template <class Ops, int MR>
void pack_a_pairs(const GemmArgs& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* out) {
  alignas(64) float sliver[kMaxPairDepth * MR];
  const int64_t ks = (kc + 1) / 2;
  for (int64_t is = 0; is < mc; is += MR, out += ks * MR) {
    pack_a<MR>(g, i0 + is, mc - is < MR ? mc - is : MR, p0, kc, sliver);
    fold_pairs<Ops, MR>(sliver, kc, out);
  }
}

// A bfloat16 B needs no rounding: its pairs are copied bit for bit, without the float32 round
// trip (which costs several times the copy when few rows of A share the packed block).
// Columns past the sliver's `cols`, and the high half of an odd last depth, are zero.
template <class Ops, int NR>
void pack_bf16_sliver(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j, int64_t cols,
                      float* out) {
  const auto* b = static_cast<const uint16_t*>(g.b);
  const int64_t whole = kc / 2, ks = (kc + 1) / 2;
  auto put = [&](int64_t p, int64_t c, uint32_t lo, uint32_t hi) {
    out[p * NR + c] = __builtin_bit_cast(float, lo | hi << 16);
  };
  if constexpr (requires { Ops::transpose_pairs_16(b, int64_t{}, out, int64_t{}); }) {
    // A full sliver of a Linear weight: 16 x 16 blocks of pairs transposed in registers,
    // the remaining depths below.
    if (g.trans_b && cols == NR) {
      const int64_t blocked = whole / 16 * 16;
      for (int64_t c = 0; c < NR; c += 16)
        for (int64_t p = 0; p < blocked; p += 16)
          Ops::transpose_pairs_16(b + (j + c) * g.ldb + p0 + 2 * p, g.ldb, out + p * NR + c, NR);
      for (int64_t c = 0; c < NR; ++c) {
        const uint16_t* row = b + (j + c) * g.ldb + p0;
        for (int64_t p = blocked; p < whole; ++p) put(p, c, row[2 * p], row[2 * p + 1]);
        if (ks > whole) put(whole, c, row[2 * whole], 0);
      }
      return;
    }
  }
  if (g.trans_b) {  // B is N x K: a column's pair is one 32-bit word of its row
    for (int64_t c = 0; c < cols; ++c) {
      if (c + kPrefetchRowsAhead < cols)
        prefetch_run(
            reinterpret_cast<const uint8_t*>(b + (j + c + kPrefetchRowsAhead) * g.ldb + p0),
            DType::BF16, kc);
      const uint16_t* row = b + (j + c) * g.ldb + p0;
      for (int64_t p = 0; p < whole; ++p) put(p, c, row[2 * p], row[2 * p + 1]);
      if (ks > whole) put(whole, c, row[2 * whole], 0);
    }
  } else {  // B is K x N (a convolution's columns): a pair joins two rows
    for (int64_t p = 0; p < ks; ++p) {
      const uint16_t* lo = b + (p0 + 2 * p) * g.ldb + j;
      const uint16_t* hi = 2 * p + 1 < kc ? lo + g.ldb : nullptr;
      if (hi != nullptr && cols == NR) {  // a full width of known size: vectorised
        for (int64_t c = 0; c < NR; ++c) put(p, c, lo[c], hi[c]);
        continue;
      }
      for (int64_t c = 0; c < cols; ++c) put(p, c, lo[c], hi != nullptr ? hi[c] : 0);
    }
  }
  for (int64_t p = 0; p < ks; ++p)
    for (int64_t c = cols; c < NR; ++c) out[p * NR + c] = 0.0f;
}

// A full sliver of a GGML block-quantised (or int8) Linear weight: each column's run of depths
// is dequantised and rounded to bfloat16 in place of the float32 sliver and its fold, and the
// runs' pairs are transposed in registers. The packed bits equal the fold's (the same rounding);
// depth ranges are whole blocks (gemm's rule; for int8 the caller checks kc is a multiple of 32),
// so every run holds a multiple of 16 pairs.
template <class Ops, int NR>
void pack_blocks_pairs_sliver(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j, float* out) {
  constexpr int64_t kRun = kBlockRun;
  alignas(64) float run[kRun];
  alignas(64) uint16_t halves[NR * kRun];
  for (int64_t pb = 0; pb < kc; pb += kRun) {
    const int64_t len = kc - pb < kRun ? kc - pb : kRun;
    for (int64_t c = 0; c < NR; ++c) {
      dequantize_row_run<Ops>(g, j + c, j + NR, p0 + pb, len, run);
      Ops::to_bf16(run, halves + c * kRun, len);
    }
    float* dst = out + pb / 2 * NR;
    for (int64_t c = 0; c < NR; c += 16)
      for (int64_t p = 0; p < len / 2; p += 16)
        Ops::transpose_pairs_16(halves + c * kRun + 2 * p, kRun, dst + p * NR + c, NR);
  }
}

template <class Ops, int NR>
void pack_b_pairs(const GemmArgs& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  alignas(64) float sliver[kMaxPairDepth * NR];
  const int64_t ks = (kc + 1) / 2;
  for (int64_t js = 0; js < nc; js += NR, out += ks * NR) {
    const int64_t cols = nc - js < NR ? nc - js : NR;
    if (g.b_dtype == DType::BF16) {
      pack_bf16_sliver<Ops, NR>(g, p0, kc, j0 + js, cols, out);
      continue;
    }
    if constexpr (requires { Ops::to_bf16(sliver, nullptr, int64_t{}); }) {
      const bool runs =
          dtype_is_quantized(g.b_dtype) || (g.b_dtype == DType::I8 && g.trans_b && kc % 32 == 0);
      if (runs && cols == NR && NR % 16 == 0) {
        pack_blocks_pairs_sliver<Ops, NR>(g, p0, kc, j0 + js, out);
        continue;
      }
    }
    pack_b<Ops, NR>(g, p0, kc, j0 + js, cols, sliver);
    fold_pairs<Ops, NR>(sliver, kc, out);
  }
}

}  // namespace zflow::cpu::gemm_detail
