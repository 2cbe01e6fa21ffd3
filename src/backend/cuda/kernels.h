// The CUDA kernels behind backend/ops.h, one file each under backend/cuda/ (host
// functions; the kernels themselves stay inside their .cu files). ops.cpp has already
// checked shapes and dtypes and made every input contiguous on the GPU: activations are
// F32 or BF16 (one dtype per call, also the output's), weights F32, BF16 or F16 (linear:
// also scaled float8, Tensor::scale(); linear and embedding: also GGML block types).
#pragma once

#include <span>
#include <vector>

#include "backend/cpu/kernels.h"  // the Unary / Binary op kinds, NormEpilogue
#include "backend/ops.h"
#include "core/tensor.h"

namespace zflow::cuda {

using cpu::Binary;
using cpu::NormEpilogue;
using cpu::Unary;

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride,
              ops::Padding2d padding);
Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom);
Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  bool fuse_silu);
Tensor upsample_nearest2x(const Tensor& x);
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const ops::AttentionMask& mask);
// attention() takes q, k, v as strided views and may return one ([B, H, Lq, Dv] over a
// [B, Lq, H, Dv] buffer). cuDNN's fused attention (attention_cudnn.cpp) is tried first: an
// undefined Tensor when this build or machine has no cuDNN, or cuDNN cannot run the case.
Tensor attention_by_cudnn(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                          const ops::AttentionMask& mask);
// The unfused form attention() falls back to for head dims the flash kernel does not take.
Tensor attention_by_matmul(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                           const ops::AttentionMask& mask);
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, const NormEpilogue& then = {});
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                  const NormEpilogue& then = {});
Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, ops::RopeLayout layout);
Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, const Tensor& cos,
                     const Tensor& sin, ops::RopeLayout layout);
Tensor embedding(const Tensor& table, std::span<const int32_t> ids, DType dtype);

Tensor softmax(const Tensor& x);
Tensor unary(const Tensor& x, Unary op);
Tensor binary(const Tensor& a, const Tensor& b, Binary op);
Tensor affine_scalar(const Tensor& x, float mul, float add);  // x * mul + add
Tensor clamp(const Tensor& x, float lo, float hi);
Tensor leaky_relu(const Tensor& x, float negative_slope);
Tensor prelu(const Tensor& x, const Tensor& slope);  // slope [C], any float dtype

Tensor add_gated(const Tensor& x, const Tensor& gate, const Tensor& r);
// Parts already checked (one dtype, dims agreeing outside `dim`) and contiguous on the GPU.
Tensor concat(const std::vector<Tensor>& parts, int dim, const Shape& out_shape);

Tensor patchify(const Tensor& x, int64_t patch, int64_t length);
Tensor unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                  int64_t patch);
Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end);

}  // namespace zflow::cuda
