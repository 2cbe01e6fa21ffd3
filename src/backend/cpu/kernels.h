// The CPU kernels behind backend/ops.h, one file each (conv2d.cpp, group_norm.cpp, ...).
// ops.cpp has already checked shapes and dtypes and made activations contiguous
// float32; weights (w, gamma, beta, biases) arrive contiguous in their stored dtype.
#pragma once

#include <span>
#include <vector>

#include "backend/ops.h"
#include "core/tensor.h"

namespace zflow::cpu {

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
// How linear_int8_rows multiplies the int8 codes (the results are equal; tests run both):
// gemm_s8's integer kernel, gemm in floats, or the first where the processor has it.
enum class Int8Products { Fastest, Integer, Float };
Tensor linear_int8_rows(const Tensor& x, const Tensor& w, const Tensor& b,
                        Int8Products products = Int8Products::Fastest);  // linear_int8.cpp
// The same for weights that share x (one ConvRot group): x is rotated and quantised once.
std::vector<Tensor> linear_int8_rows(const Tensor& x, std::span<const Tensor> ws,
                                     std::span<const Tensor> bs,
                                     Int8Products products = Int8Products::Fastest);
// out[m, N] = x[m, K] @ w[N, K]^T (contiguous rows), w in its stored dtype times its scale().
void linear_product(const float* x, int64_t m, const Tensor& w, float* out);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride,
              ops::Padding2d padding);
Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom);
Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  bool fuse_silu);
Tensor upsample_nearest2x(const Tensor& x);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const ops::AttentionMask& mask);
// What the fused norms of ops.h do with a row's normalised values n in the same pass, in this
// order, for x[B, L, D] and per-sample vectors [B, D] (all float32 on the CPU, the activation
// dtype on the GPU); an undefined tensor skips its step:
//   n = n * (1 + scale) + shift;  n = residual + gate * n  (residual + n without a gate).
struct NormEpilogue {
  Tensor scale, shift;    // [B, D]
  Tensor residual, gate;  // [B, L, D], [B, D]
};
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, const NormEpilogue& then = {});
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                  const NormEpilogue& then = {});
Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, ops::RopeLayout layout);
// rope(rms_norm(x, weight, eps)) per head of x[B, L, H, D].
Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, const Tensor& cos,
                     const Tensor& sin, ops::RopeLayout layout);
Tensor embedding(const Tensor& table, std::span<const int32_t> ids);
Tensor patchify(const Tensor& x, int64_t patch, int64_t length);
Tensor unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                  int64_t patch);
Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end);

enum class Unary { Silu, Exp, Tanh, GeluErf, GeluTanh, GeluQuick };
Tensor softmax(const Tensor& x);
Tensor unary(const Tensor& x, Unary op);
enum class Binary { Add, Mul, SiluMul };
Tensor binary(const Tensor& a, const Tensor& b, Binary op);
Tensor affine_scalar(const Tensor& x, float mul, float add);  // x * mul + add
Tensor clamp(const Tensor& x, float lo, float hi);
Tensor leaky_relu(const Tensor& x, float negative_slope);
Tensor prelu(const Tensor& x, const Tensor& slope);  // slope [C], any float dtype

// A small vector (bias, gamma) widened to float32; empty when `t` is undefined.
std::vector<float> widen(const Tensor& t);

}  // namespace zflow::cpu
