// 2-D convolution on the GPU as im2col + GEMM, per sample and in chunks of output rows so
// the column buffer stays under kScratchBytes:
//   y[Cout, rows * OW] = w[Cout, Cin * kh * kw] @ col[Cin * kh * kw, rows * OW]
// written straight into the NCHW output (row stride OH * OW), then the bias per channel.
// A 1x1, stride-1, unpadded convolution uses x[Cin, H * W] as the right operand directly.
// The weight is converted to the activation dtype once per call.
#include <algorithm>

#include "backend/cuda/context.h"
#include "backend/cuda/gemm.h"
#include "backend/cuda/kernels.h"

namespace zflow::cuda {
namespace {

constexpr int64_t kScratchBytes = int64_t{256} << 20;

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride,
              ops::Padding2d padding) {
  Im2col s{};
  s.cin = x.size(1);
  s.h = x.size(2);
  s.w = x.size(3);
  s.kh = w.size(2);
  s.kw = w.size(3);
  s.stride = stride;
  s.pad_top = padding.top;
  s.pad_left = padding.left;
  const int64_t cout = w.size(0);
  const int64_t oh = (s.h + padding.top + padding.bottom - s.kh) / stride + 1;
  s.ow = (s.w + padding.left + padding.right - s.kw) / stride + 1;
  const DType t = x.dtype();
  const int64_t batch = x.size(0), k = s.cin * s.kh * s.kw, pixels = oh * s.ow;
  Tensor y = Tensor::empty({batch, cout, oh, s.ow}, t, Device::CUDA);
  if (y.numel() == 0) return y;
  if (k == 0) return Tensor::zeros(y.shape(), t, Device::CUDA);
  const Tensor wc = w.to(t);  // [cout, k]
  const int64_t elem = static_cast<int64_t>(dtype_size(t));
  const bool direct = s.kh == 1 && s.kw == 1 && stride == 1 && padding.top == 0 &&
                      padding.bottom == 0 && padding.left == 0 && padding.right == 0;
  const int64_t rows =
      std::clamp<int64_t>(kScratchBytes / std::max<int64_t>(1, k * s.ow * elem), 1, oh);
  const Tensor col = direct ? Tensor{} : Tensor::empty({k, rows * s.ow}, t, Device::CUDA);
  const cudaStream_t stream = context().stream;

  for (int64_t n = 0; n < batch; ++n) {
    const char* xn = static_cast<const char*>(x.raw()) + n * s.cin * s.h * s.w * elem;
    char* yn = static_cast<char*>(y.raw()) + n * cout * pixels * elem;
    for (int64_t r0 = 0; r0 < oh; r0 += rows) {
      const int64_t m = (std::min(oh, r0 + rows) - r0) * s.ow;  // pixels in this chunk
      GemmDesc g;
      g.dtype = t;
      g.m = cout;
      g.n = m;
      g.k = k;
      g.a = wc.raw();
      g.lda = k;
      g.d = yn + r0 * s.ow * elem;
      g.ldd = pixels;
      if (direct) {
        g.b = xn + r0 * s.ow * elem;
        g.ldb = pixels;
      } else {
        check_launch(launch_im2col(act_of(x), xn, col.raw(), s, r0, m, stream), "im2col_kernel");
        g.b = col.raw();
        g.ldb = m;
      }
      gemm(g);
    }
  }
  if (b.defined())
    check_launch(
        launch_channel_bias(act_of(x), y.raw(), weight_ref(b), cout, pixels, y.numel(), stream),
        "channel_bias_kernel");
  return y;
}

}  // namespace zflow::cuda
