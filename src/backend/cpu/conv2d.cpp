// 2-D convolution as gemm, in chunks of output rows so the scratch stays bounded:
//   out^T[pixels, Cout] = colT[Cin*kh*kw, pixels]^T @ w[Cout, Cin*kh*kw]^T
// where a column of `colT` holds the receptive field of one output pixel (im2col, stored
// one kernel tap per row so it is written and read in order; the weight is gemm's B
// operand and stays in its stored dtype).
// The result is transposed into NCHW with the bias added. A 1x1, stride-1, unpadded
// convolution skips im2col: x[Cin, pixels] is gemm's A operand read transposed.
//
// Scratch: `col` and the transposed result are each capped at kScratchBytes, so a
// 1024x1024 input with 512 channels (4.7 GB of columns in one piece) runs in chunks of
// a few output rows.
#include <algorithm>

#include "backend/cpu/gemm.h"
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

// colT[ci * kh * kw + i * kw + j][(r - r0) * ow + c] = x[ci][r * s + i - pad_t][c * s + j - pad_l],
// zero outside the input, for output rows r in [r0, r1). Each row of colT is one kernel tap
// over the chunk's pixels, so it is written in order and, at stride 1, read in order from
// one input row (a shifted copy with zero edges); gemm reads colT as A transposed.
void im2col(const float* x, const ConvShape& s, int64_t r0, int64_t r1, float* col) {
  const int64_t m = (r1 - r0) * s.ow;
  parallel_for(s.k(), [&](int64_t begin, int64_t end) {
    for (int64_t kidx = begin; kidx < end; ++kidx) {
      const int64_t ci = kidx / (s.kh * s.kw), i = kidx / s.kw % s.kh, j = kidx % s.kw;
      const float* plane = x + ci * s.h * s.w;
      float* dst = col + kidx * m;
      // Output columns whose input column c * stride + j - pad_l lies inside [0, w).
      const int64_t shift = j - s.pad.left;
      const int64_t c_lo = std::clamp<int64_t>((-shift + s.stride - 1) / s.stride, 0, s.ow);
      const int64_t c_hi = std::clamp<int64_t>((s.w - shift + s.stride - 1) / s.stride, c_lo, s.ow);
      for (int64_t r = r0; r < r1; ++r, dst += s.ow) {
        const int64_t ih = r * s.stride + i - s.pad.top;
        if (ih < 0 || ih >= s.h) {
          std::fill(dst, dst + s.ow, 0.0f);
          continue;
        }
        const float* src = plane + ih * s.w + shift;
        std::fill(dst, dst + c_lo, 0.0f);
        if (s.stride == 1) {
          std::copy(src + c_lo, src + c_hi, dst + c_lo);
        } else {
          for (int64_t c = c_lo; c < c_hi; ++c) dst[c] = src[c * s.stride];
        }
        std::fill(dst + c_hi, dst + s.ow, 0.0f);
      }
    }
  });
}

// out[co][p] = tmp[p][co] + bias[co] for p in [0, pixels); out has row stride out_stride.
void transpose_add_bias(const float* tmp, int64_t pixels, int64_t cout,
                        const std::vector<float>& bias, float* out, int64_t out_stride) {
  constexpr int64_t kBlock = 256;  // pixels per block: keeps the tmp rows read in cache
  parallel_for(
      cout,
      [&](int64_t c0, int64_t c1) {
        for (int64_t p0 = 0; p0 < pixels; p0 += kBlock) {
          const int64_t p1 = std::min(pixels, p0 + kBlock);
          for (int64_t co = c0; co < c1; ++co) {
            const float b = bias.empty() ? 0.0f : bias[co];
            float* dst = out + co * out_stride;
            for (int64_t p = p0; p < p1; ++p) dst[p] = tmp[p * cout + co] + b;
          }
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
  const bool direct = s.kh == 1 && s.kw == 1 && stride == 1 && padding.top == 0 &&
                      padding.bottom == 0 && padding.left == 0 && padding.right == 0;

  // Output rows per chunk: as many as fit the scratch budget, at least one.
  const int64_t row_bytes = s.ow * std::max(direct ? 0 : k, s.cout) * int64_t{sizeof(float)};
  const int64_t rows =
      std::clamp<int64_t>(kScratchBytes / std::max<int64_t>(row_bytes, 1), 1, s.oh);
  const Tensor tmp = Tensor::empty({rows * s.ow, s.cout}, DType::F32);
  const Tensor col = direct ? Tensor{} : Tensor::empty({k, rows * s.ow}, DType::F32);

  for (int64_t n = 0; n < batch; ++n) {
    const float* xn = x.data<float>() + n * s.cin * s.h * s.w;  // [cin, h, w]
    float* yn = y.data<float>() + n * s.cout * pixels;          // [cout, oh * ow]
    for (int64_t r0 = 0; r0 < s.oh; r0 += rows) {
      const int64_t r1 = std::min(s.oh, r0 + rows);
      const int64_t m = (r1 - r0) * s.ow;
      GemmArgs g;
      g.m = m;
      g.n = s.cout;
      g.k = k;
      g.b = w.raw();
      g.b_dtype = w.dtype();
      g.ldb = k;
      g.trans_b = true;
      g.c = tmp.data<float>();
      g.ldc = s.cout;
      if (direct) {
        g.trans_a = true;  // A = x[cin, pixels] read as [pixels, cin]
        g.a = xn + r0 * s.ow;
        g.lda = pixels;
      } else {
        im2col(xn, s, r0, r1, col.data<float>());
        g.trans_a = true;  // A = colT[k, m] read as [m, k]
        g.a = col.data<float>();
        g.lda = m;
      }
      gemm(g);
      transpose_add_bias(tmp.data<float>(), m, s.cout, bias, yn + r0 * s.ow, pixels);
    }
  }
  return y;
}

}  // namespace zflow::cpu
