// 2-D convolution as gemm, in chunks of output rows so the scratch stays bounded:
//   out^T[pixels, Cout] = col[pixels, Cin*kh*kw] @ w[Cout, Cin*kh*kw]^T
// where a row of `col` holds the receptive field of one output pixel (im2col, one
// row per pixel so the weight is gemm's B operand and stays in its stored dtype).
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

// col[(r - r0) * ow + c][ci * kh * kw + i * kw + j] = x[ci][r * s + i - pad_t][c * s + j - pad_l],
// zero outside the input, for output rows r in [r0, r1).
void im2col(const float* x, const ConvShape& s, int64_t r0, int64_t r1, float* col) {
  const int64_t k = s.k();
  parallel_for(r1 - r0, [&](int64_t begin, int64_t end) {
    for (int64_t rr = begin; rr < end; ++rr) {
      const int64_t r = r0 + rr;
      float* row = col + rr * s.ow * k;  // [ow, k]
      for (int64_t ci = 0; ci < s.cin; ++ci) {
        const float* plane = x + ci * s.h * s.w;
        for (int64_t i = 0; i < s.kh; ++i) {
          const int64_t ih = r * s.stride + i - s.pad.top;
          const bool row_inside = ih >= 0 && ih < s.h;
          for (int64_t j = 0; j < s.kw; ++j) {
            const int64_t kidx = (ci * s.kh + i) * s.kw + j;
            for (int64_t c = 0; c < s.ow; ++c) {
              const int64_t iw = c * s.stride + j - s.pad.left;
              row[c * k + kidx] = row_inside && iw >= 0 && iw < s.w ? plane[ih * s.w + iw] : 0.0f;
            }
          }
        }
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
  const Tensor col = direct ? Tensor{} : Tensor::empty({rows * s.ow, k}, DType::F32);

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
        g.a = col.data<float>();
        g.lda = k;
      }
      gemm(g);
      transpose_add_bias(tmp.data<float>(), m, s.cout, bias, yn + r0 * s.ow, pixels);
    }
  }
  return y;
}

}  // namespace zflow::cpu
