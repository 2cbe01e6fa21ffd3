// The op set the models are written with. Every op takes and returns Tensors,
// dispatches on the device of its inputs, and checks its arguments (errors start
// with the op name in brackets). Inputs that are strided views are accepted and copied
// to contiguous form where a kernel needs it.
//
// Devices: all tensor inputs of one call must be on one device (Tensor::to(Device) moves
// them); the output is on that device. GPU work is queued on the device's stream and
// returns at once; reading a result (to(Device::CPU)) waits for it.
//
// Dtypes: weights (linear/conv weights, biases, norm affines, embedding tables) may be
// stored in float32, bfloat16 or float16 and are widened inside the kernels.
// Activations (every other tensor input) are:
//   - on the CPU: float32;
//   - on the GPU: float32 or bfloat16, every activation input of one call in the same
//     dtype, and the output in that dtype. Kernels compute and accumulate in float32 either
//     way (bf16 only in storage and in tensor-core inputs). With float32 activations a
//     matmul runs in true fp32 (no TF32); with bf16 activations it runs bf16 x bf16 on the
//     tensor cores, a weight of another dtype being converted to bf16 first.
// Exceptions, stated at the op: rope's cos/sin tables are always float32; matmul's b
// may be any weight dtype; embedding's output dtype is chosen by the caller.
//
// Adding an op: declare it here, check its arguments in ops.cpp, implement it in
// backend/cpu/<op>.cpp and backend/cuda/<op>.cu, and test it against a plain reference
// (CPU) and against the CPU op (CUDA, tests/backend/test_cuda_ops.cpp).
#pragma once

#include <span>
#include <vector>

#include "core/tensor.h"

namespace zflow::ops {

// y[..., N] = x[..., K] @ w[N, K]^T + b[N]   (b may be undefined). w may also be in a GGML
// block type (Q8_0, Q4_K, ...; K whole blocks): it stays quantised, dequantised per cache block
// on the CPU and whole, into a temporary, before the GEMM on the GPU.
// Or float8 (F8_E4M3 / F8_E5M2) with its per-tensor scale (Tensor::scale()): one byte a value
// in memory; the CPU widens it as it packs and applies the scale to the product; the GPU runs
// an FP8 tensor-core matmul (sm_89+, bf16 activations) or widens it to the activation dtype.
// Or int8 with row scales (Tensor::row_scales(), ComfyUI's int8_tensorwise): on the CPU as
// ComfyUI runs it, activations quantised per row to int8 (backend/cpu/linear_int8.cpp).
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b = {});

// linear(x, ws[i], bs[i]) for every weight (bs empty: no biases), for weights that read the same
// input (q, k and v; w1 and w3): where they are int8 with row scales in one ConvRot group, on the
// CPU, x is rotated and quantised once for all of them. The results equal separate linears to
// the bit.
std::vector<Tensor> linears(const Tensor& x, const std::vector<Tensor>& ws,
                            const std::vector<Tensor>& bs = {});

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

// Which keys each query may see. Empty = all of them.
struct AttentionMask {
  bool causal = false;               // query i sees keys j <= i (requires Lq == Lk)
  std::vector<int64_t> key_lengths;  // per batch: keys at or past this index are hidden
};

// Scaled dot-product attention over q[B, H, Lq, D], k[B, Hkv, Lk, D], v[B, Hkv, Lk, Dv]:
// softmax(q k^T * scale + mask) v, without materialising more than a block of scores.
// Hkv may divide H (grouped-query attention: query head h reads kv head h / (H / Hkv)).
Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const AttentionMask& mask = {});

// RMSNorm over the last dim: x * rsqrt(mean(x^2) + eps) * weight (weight[D] may be undefined).
Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps);

// LayerNorm over the last dim; weight[D] and bias[D] may be undefined (no affine).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps);

// Which two features of a head a rotary pair rotates.
enum class RopeLayout {
  kInterleaved,  // (2j, 2j+1): complex pairs, as FLUX and Z-Image
  kHalfSplit,    // (j, j + D/2): rotate_half, as Qwen and LLaMA
};
// Rotary position embedding on x[B, L, H, D]: pair j of every head becomes
// (x1 cos - x2 sin, x1 sin + x2 cos) with cos, sin [Bc, L, D/2], Bc = 1 or B.
Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, RopeLayout layout);

// Fused norms: a norm and the op that follows it in the transformers, in one pass over the
// data. Each equals the composition it names (on the CPU bit for bit; on the GPU with bf16
// activations it rounds once where the composition rounds twice).
//
// rope(rms_norm(x, weight, eps), cos, sin, layout) for x[B, L, H, D]: QK-norm, then RoPE.
Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, const Tensor& cos,
                     const Tensor& sin, RopeLayout layout);
// The adaLN pre-norm of x[B, L, D] with per-sample shift, scale [B, D] (x's dtype):
// y[b, l, :] = norm(x)[b, l, :] * (1 + scale[b, :]) + shift[b, :]; shift may be undefined
// (no shift, as in Z-Image).
//   rms_norm_modulate:   norm(x) = rms_norm(x, weight, eps)       (Z-Image's blocks)
//   layer_norm_modulate: norm(x) = layer_norm(x, {}, {}, eps)     (FLUX, Z-Image's final layer)
Tensor rms_norm_modulate(const Tensor& x, const Tensor& weight, float eps, const Tensor& shift,
                         const Tensor& scale);
Tensor layer_norm_modulate(const Tensor& x, float eps, const Tensor& shift, const Tensor& scale);
// A normalised, gated residual: x + gate * rms_norm(r, weight, eps) for x, r [B, L, D] and
// gate [B, D], or x + rms_norm(r, weight, eps) when gate is undefined (Z-Image's sandwich
// post-norm, add_gated(x, gate, rms_norm(r, weight, eps))).
Tensor add_gated_rms_norm(const Tensor& x, const Tensor& gate, const Tensor& r,
                          const Tensor& weight, float eps);

// Rows of table[V, D] (stored float dtype or GGML block type) -> [ids.size(), D] on
// the table's device, in `dtype`: float32 (the CPU's only choice) or, on the GPU, bfloat16.
Tensor embedding(const Tensor& table, std::span<const int32_t> ids, DType dtype = DType::F32);

// Elementwise.
Tensor silu(const Tensor& x);
// The GELU variants the text encoders use.
enum class GeluKind {
  kErf,    // x * Phi(x), exact (torch "gelu")
  kTanh,   // tanh approximation (torch gelu(approximate="tanh"), T5's "gelu_new", FLUX)
  kQuick,  // x * sigmoid(1.702 x) (CLIP's "quick_gelu")
};
Tensor gelu(const Tensor& x, GeluKind kind);
// Softmax over the last dim (max-subtracted, accumulated in float32 or wider).
Tensor softmax(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor silu_mul(const Tensor& a, const Tensor& b);  // silu(a) * b, the SwiGLU gate
Tensor add(const Tensor& a, const Tensor& b);       // same shape
Tensor mul(const Tensor& a, const Tensor& b);       // same shape
Tensor mul_scalar(const Tensor& x, float s);
Tensor add_scalar(const Tensor& x, float s);
Tensor exp(const Tensor& x);
Tensor clamp(const Tensor& x, float lo, float hi);
// x where x >= 0, else x * negative_slope (torch's LeakyReLU; ESRGAN's activation, slope 0.2).
Tensor leaky_relu(const Tensor& x, float negative_slope);
// x where x >= 0, else x * slope[c] for x[B, C, ...] (torch's PReLU with one slope per channel,
// a weight [C]; Real-ESRGAN Compact's activation).
Tensor prelu(const Tensor& x, const Tensor& slope);

// A gated residual of token sequences x, r [B, L, D] with a per-sample gate [B, D] of x's dtype
// (FLUX's adaLN-Zero): y[b, l, :] = x[b, l, :] + gate[b, :] * r[b, l, :]. Implemented in
// backend/token_ops.cpp; the adaLN modulation itself is fused into the norms above.
Tensor add_gated(const Tensor& x, const Tensor& gate, const Tensor& r);

// Concatenation along `dim` of tensors of one dtype whose other dims agree (torch.cat); the
// parts may be strided views. Implemented in backend/token_ops.cpp.
Tensor concat(const std::vector<Tensor>& parts, int dim);

// Z-Image's patch layout (diffusers ZImageTransformer2DModel._patchify_image): latents
// x[B, C, H, W] (H and W multiples of p) become tokens [B, length, p*p*C], token (h, w) at
// row h * (W/p) + w holding its p x p patch with features in (ph, pw, c) order, c fastest.
// Rows past the (H/p)(W/p) image tokens are 0 (length >= (H/p)(W/p)).
Tensor patchify(const Tensor& x, int64_t patch, int64_t length);
// The inverse for the first (H/p)(W/p) rows of tokens[B, L, p*p*C] -> [B, C, H, W].
Tensor unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                  int64_t patch);

// A copy of x[B, L, D] whose rows [begin[b], end[b]) of sample b all hold `row` ([D], x's
// dtype), or 0 where `row` is undefined: learned pad tokens and zero batch padding.
Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end);

}  // namespace zflow::ops
