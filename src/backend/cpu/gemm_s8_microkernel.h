// The micro-kernel and packing of gemm_s8, written once over a small vector interface `Ops`
// and instantiated by gemm_kernel_avx512_vnni.cpp (and by the tests on portable vectors, so the
// geometry is checked on every machine). Layouts: gemm_s8_kernels.h. Ops supplies:
//   using V;  static constexpr int kWidth;   16 int32 lanes
//   V zero(); V load(const void*); void store(void*, V);   unaligned
//   V broadcast(uint32_t);
//   V dot4(V acc, V a, V b): acc + the four products of a's unsigned and b's signed bytes in
//     every lane, without saturation (vpdpbusd)
//   void finish(V sums, const int32_t* offset, float row_scale, const float* col_scale,
//               const float* bias, float* out):
//     out[l] = float(sums[l] - offset[l]) * (row_scale * col_scale[l]) (+ bias[l] unless null),
//     each step rounded on its own
// and may supply a faster packing of B:
//   void transpose_16x16(const int8_t* src, int64_t ld, uint32_t* dst, int64_t ldd):
//     16 rows of 16 slots (row r at src + r * ld bytes) to dst[s * ldd + r] = slot s of row r
// Include it after the kernel file's target pragma and after every standard header.
#pragma once

#include <cstring>

#include "backend/cpu/gemm_s8_kernels.h"

namespace zflow::cpu::gemm_detail {

// Slot s of a row of A or B: its depths [4 s, 4 s + 4).
inline uint32_t s8_slot(const int8_t* row, int64_t s) {
  uint32_t word;
  std::memcpy(&word, row + 4 * s, 4);
  return word;
}

// The last slot of a depth block of kc depths, kc not a multiple of 4: the depths below kc,
// zero above.
inline uint32_t s8_partial_slot(const int8_t* row, int64_t kc) {
  uint32_t word = 0;
  std::memcpy(&word, row + kc / 4 * 4, static_cast<size_t>(kc % 4));
  return word;
}

template <class Ops, int MR, int NV>
void micro_kernel_s8(int64_t ks, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                     bool accumulate, const GemmS8Epilogue* ep) {
  using V = typename Ops::V;
  constexpr int W = Ops::kWidth;
  constexpr int NR = NV * W;
  V acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      acc[i][v] = accumulate ? Ops::load(c + i * ldc + v * W) : Ops::zero();
  for (int64_t p = 0; p < ks; ++p) {
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Ops::load(b + v * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const V av = Ops::broadcast(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Ops::dot4(acc[i][v], av, bv[v]);
    }
    a += MR;
    b += NR;
  }
  if (ep == nullptr) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) Ops::store(c + i * ldc + v * W, acc[i][v]);
    return;
  }
  const GemmS8Epilogue e = *ep;  // a copy: the stores to c cannot alias it
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      Ops::finish(acc[i][v], e.col_offset + v * W, e.row_scale[i], e.col_scale + v * W,
                  e.bias != nullptr ? e.bias + v * W : nullptr, c + i * ldc + v * W);
}

// A's rows as unsigned bytes (a + 128, i.e. a ^ 0x80), MR rows to a sliver.
template <int MR>
void pack_a_s8(const GemmS8Args& g, int64_t i0, int64_t mc, int64_t p0, int64_t kc, uint32_t* out) {
  const int64_t ks = (kc + 3) / 4;
  for (int64_t is = 0; is < mc; is += MR, out += ks * MR) {
    const int64_t rows = mc - is < MR ? mc - is : MR;
    for (int64_t r = 0; r < rows; ++r) {
      const int8_t* src = g.a + (i0 + is + r) * g.lda + p0;
      for (int64_t s = 0; s < kc / 4; ++s) out[s * MR + r] = s8_slot(src, s) ^ 0x80808080u;
      // A partial last slot: its missing depths meet B's zero padding, so any value does.
      if (kc % 4 != 0) out[kc / 4 * MR + r] = s8_partial_slot(src, kc) ^ 0x80808080u;
    }
    for (int64_t s = 0; s < ks; ++s)
      for (int64_t r = rows; r < MR; ++r) out[s * MR + r] = 0;
  }
}

template <class Ops, int NR>
void pack_b_s8(const GemmS8Args& g, int64_t p0, int64_t kc, int64_t j0, int64_t nc, uint32_t* out,
               int32_t* col_offset) {
  using V = typename Ops::V;
  constexpr int W = Ops::kWidth;
  const int64_t ks = (kc + 3) / 4;
  for (int64_t js = 0; js < nc; js += NR, out += ks * NR) {
    const int64_t cols = nc - js < NR ? nc - js : NR;
    bool packed = false;
    if constexpr (requires { Ops::transpose_16x16(g.b, int64_t{}, out, int64_t{}); }) {
      if (cols == NR && kc % 64 == 0) {  // whole 16 x 16 blocks of slots
        for (int64_t c = 0; c < NR; c += 16)
          for (int64_t s = 0; s < ks; s += 16)
            Ops::transpose_16x16(g.b + (j0 + js + c) * g.ldb + p0 + 4 * s, g.ldb, out + s * NR + c,
                                 NR);
        packed = true;
      }
    }
    if (!packed) {
      for (int64_t c = 0; c < cols; ++c) {
        const int8_t* row = g.b + (j0 + js + c) * g.ldb + p0;
        for (int64_t s = 0; s < kc / 4; ++s) out[s * NR + c] = s8_slot(row, s);
        if (kc % 4 != 0) out[kc / 4 * NR + c] = s8_partial_slot(row, kc);
      }
      for (int64_t s = 0; s < ks; ++s)
        for (int64_t c = cols; c < NR; ++c) out[s * NR + c] = 0;
    }
    // 128 * the column sums, by the kernel's own instruction: bytes of 128 times the sliver.
    const V offset_bytes = Ops::broadcast(0x80808080u);
    for (int v = 0; v < NR / W; ++v) {
      V sum = Ops::load(col_offset + js + v * W);
      for (int64_t s = 0; s < ks; ++s)
        sum = Ops::dot4(sum, offset_bytes, Ops::load(out + s * NR + v * W));
      Ops::store(col_offset + js + v * W, sum);
    }
  }
}

}  // namespace zflow::cpu::gemm_detail
