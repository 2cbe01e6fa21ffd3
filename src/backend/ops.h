// The op set the models are written with. Every op takes and returns Tensors,
// dispatches on the device of its inputs, and checks its arguments (errors start
// with the op name in brackets). Activations are float32; weights may be stored in
// float32, bfloat16 or float16 and are widened inside the kernels. Inputs that are
// strided views are accepted and copied to contiguous form where a kernel needs it.
//
// Adding an op: declare it here, check its arguments in ops.cpp, implement it in
// backend/cpu/<op>.cpp (and later backend/cuda/<op>.cu), and test it against a plain
// reference.
#pragma once

#include "core/tensor.h"

namespace zflow::ops {

// y[..., N] = x[..., K] @ w[N, K]^T + b[N]   (b may be undefined)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// Batched matmul: a[..., M, K] @ b[..., K, N] (same leading dims).
Tensor matmul(const Tensor& a, const Tensor& b);

// Zero padding of a convolution input, in pixels on each side.
struct Padding2d {
  int top = 0, bottom = 0, left = 0, right = 0;
  static Padding2d uniform(int p) { return {p, p, p, p}; }
};

// 2-D convolution, NCHW: x[B, Cin, H, W], w[Cout, Cin, kh, kw], b[Cout] (may be undefined).
// Out[B, Cout, (H + pad_t + pad_b - kh) / stride + 1, (W + pad_l + pad_r - kw) / stride + 1].
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding2d padding);
// Symmetric zero padding.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding);

// Zero padding of the last two dims of x[B, C, H, W].
Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom);

// GroupNorm over x[B, C, ...] with per-channel affine gamma[C], beta[C]; statistics in
// float64 so large groups (4 channels x 1024 x 1024) lose nothing to summation order.
Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps);
// silu(group_norm(...)) in one pass over the data: the pre-activation of every ResNet conv.
Tensor group_norm_silu(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                       float eps);

// Nearest-neighbour upsampling of x[B, C, H, W] by 2 in both spatial dims.
Tensor upsample_nearest2x(const Tensor& x);

// Scaled dot-product attention over q[B, H, Lq, D], k[B, H, Lk, D], v[B, H, Lk, Dv]:
// softmax(q k^T * scale) v, without materialising more than a block of scores.
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale);

// Elementwise, float32.
Tensor silu(const Tensor& x);
Tensor add(const Tensor& a, const Tensor& b);  // same shape
Tensor mul(const Tensor& a, const Tensor& b);  // same shape
Tensor mul_scalar(const Tensor& x, float s);
Tensor add_scalar(const Tensor& x, float s);
Tensor exp(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);

}  // namespace zflow::ops
