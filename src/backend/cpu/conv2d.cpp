// 2-D convolution as gemm, in chunks of output rows so the scratch stays bounded:
//   out[Cout, pixels] = w[Cout, Cin*kh*kw] @ col[Cin*kh*kw, pixels]
// where column p of `col` holds the receptive field of output pixel p (im2col, one kernel tap
// per row, so each row is a shifted copy of an input row with zero edges, written in order).
// The product lands in NCHW as it is: no transpose, the bias added per channel row. The
// weight is gemm's A operand (a small matrix widened to float32 once per call); the columns,
// which every output channel reads, are its B operand, packed by gemm's vectorised row
// pairing. When gemm would multiply bfloat16 pairs for this weight (gemm_default_isa), the
// columns are written in bfloat16, rounded to nearest even as gemm's own packing rounds
// activations: half the memory traffic, and the same products as a bf16 weight's Linear.
//
// Scratch: `col` is capped at kScratchBytes, so a 1024x1024 input with 512 channels (4.7 GB of
// float32 columns in one piece) runs in chunks of a few output rows.
#include <algorithm>
#include <bit>
#include <cstring>

#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

constexpr int64_t kScratchBytes = int64_t{32} << 20;

struct ConvShape {
  int64_t cin, h, w;     // input plane
  int64_t cout, kh, kw;  // kernel
  int64_t oh, ow;        // output plane
  int64_t stride;
  ops::Padding2d pad;
  int64_t k() const { return cin * kh * kw; }
};

// Rounding to bfloat16 as gemm's packing does (nearest, ties to even; NaN stays NaN), written
// without branches so the copy loops vectorise.
inline uint16_t bf16_bits(float x) {
  const uint32_t f = std::bit_cast<uint32_t>(x);
  const uint32_t rounded = (f + 0x7FFFu + ((f >> 16) & 1u)) >> 16;
  const bool nan = (f & 0x7FFFFFFFu) > 0x7F800000u;
  return static_cast<uint16_t>(nan ? (f >> 16) | 0x40u : rounded);
}

template <typename T>
T column_value(float v) {
  if constexpr (std::is_same_v<T, float>)
    return v;
  else
    return bf16_bits(v);
}

// col[ci * kh * kw + i * kw + j][(r - r0) * ow + c] = x[ci][r * s + i - pad_t][c * s + j - pad_l],
// zero outside the input, for output rows r in [r0, r1); T is float or bfloat16 bits.
template <typename T>
void im2col(const float* x, const ConvShape& s, int64_t r0, int64_t r1, T* col) {
  const int64_t m = (r1 - r0) * s.ow;
  parallel_for(s.k(), [&](int64_t begin, int64_t end) {
    for (int64_t kidx = begin; kidx < end; ++kidx) {
      const int64_t ci = kidx / (s.kh * s.kw), i = kidx / s.kw % s.kh, j = kidx % s.kw;
      const float* plane = x + ci * s.h * s.w;
      T* dst = col + kidx * m;
      // Output columns whose input column c * stride + j - pad_l lies inside [0, w).
      const int64_t shift = j - s.pad.left;
      const int64_t c_lo = std::clamp<int64_t>((-shift + s.stride - 1) / s.stride, 0, s.ow);
      const int64_t c_hi = std::clamp<int64_t>((s.w - shift + s.stride - 1) / s.stride, c_lo, s.ow);
      for (int64_t r = r0; r < r1; ++r, dst += s.ow) {
        const int64_t ih = r * s.stride + i - s.pad.top;
        if (ih < 0 || ih >= s.h) {
          std::fill(dst, dst + s.ow, T{});
          continue;
        }
        const float* src = plane + ih * s.w + shift;
        std::fill(dst, dst + c_lo, T{});
        if (s.stride == 1) {  // the common case, a contiguous run the compiler vectorises
          for (int64_t c = c_lo; c < c_hi; ++c) dst[c] = column_value<T>(src[c]);
        } else {
          for (int64_t c = c_lo; c < c_hi; ++c) dst[c] = column_value<T>(src[c * s.stride]);
        }
        std::fill(dst + c_hi, dst + s.ow, T{});
      }
    }
  });
}

// out[co][p] += bias[co] for p in [0, pixels); out has row stride out_stride.
void add_bias(const std::vector<float>& bias, int64_t pixels, float* out, int64_t out_stride) {
  parallel_for(
      static_cast<int64_t>(bias.size()),
      [&](int64_t c0, int64_t c1) {
        for (int64_t co = c0; co < c1; ++co) {
          float* dst = out + co * out_stride;
          const float b = bias[co];
          for (int64_t p = 0; p < pixels; ++p) dst[p] += b;
        }
      },
      8);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride,
              ops::Padding2d padding) {
  ConvShape s;
  s.cin = x.size(1);
  s.h = x.size(2);
  s.w = x.size(3);
  s.cout = w.size(0);
  s.kh = w.size(2);
  s.kw = w.size(3);
  s.stride = stride;
  s.pad = padding;
  s.oh = (s.h + padding.top + padding.bottom - s.kh) / stride + 1;
  s.ow = (s.w + padding.left + padding.right - s.kw) / stride + 1;
  const int64_t batch = x.size(0), k = s.k(), pixels = s.oh * s.ow;

  Tensor y = Tensor::empty({batch, s.cout, s.oh, s.ow}, DType::F32);
  if (y.numel() == 0) return y;
  const std::vector<float> bias = widen(b);
  // The weight matrix in float32 (dequantised; a float8 weight's scale is gemm's alpha).
  const std::vector<float> widened = w.dtype() == DType::F32 ? std::vector<float>{} : widen(w);
  const Tensor w32 = w.dtype() == DType::F32 ? w.contiguous() : Tensor{};
  const float* weight = w32.defined() ? w32.data<float>() : widened.data();
  const bool bf16_columns = gemm_default_isa(w.dtype()) == GemmIsa::Avx512Bf16;
  const int64_t column_bytes = bf16_columns ? 2 : 4;

  // Output rows per chunk: as many as fit the scratch budget, at least one.
  const int64_t rows =
      std::clamp<int64_t>(kScratchBytes / std::max<int64_t>(s.ow * k * column_bytes, 1), 1, s.oh);
  const Tensor col = Tensor::empty({k, rows * s.ow}, bf16_columns ? DType::BF16 : DType::F32);

  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x.data<float>() + n * s.cin * s.h * s.w;  // [cin, h, w]
    float* yn = y.data<float>() + n * s.cout * pixels;          // [cout, oh * ow]
    for (int64_t r0 = 0; r0 < s.oh; r0 += rows) {
      const int64_t r1 = std::min(s.oh, r0 + rows);
      const int64_t m = (r1 - r0) * s.ow;
      if (bf16_columns)
        im2col(xn, s, r0, r1, static_cast<uint16_t*>(col.raw()));
      else
        im2col(xn, s, r0, r1, col.data<float>());
      GemmArgs g;
      g.m = s.cout;
      g.n = m;
      g.k = k;
      g.alpha = w.scale();
      g.a = weight;
      g.lda = k;
      g.b = col.raw();
      g.b_dtype = col.dtype();
      g.ldb = m;
      g.c = yn + r0 * s.ow;
      g.ldc = pixels;
      gemm(g);
      if (!bias.empty()) add_bias(bias, m, yn + r0 * s.ow, pixels);
    }
  }
  return y;
}

}  // namespace zflow::cpu
