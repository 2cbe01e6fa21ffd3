// The interface between the Tensor-level CUDA code (.cpp files, C++20, compiled by the host
// compiler) and the kernels (.cu files). nvcc 13 cannot compile this project's fmt (9.x) in
// C++20 mode, so the .cu files are compiled as C++17 and see only this header: raw device
// pointers, sizes and plain enums in, a cudaError_t from the launch out (cudaSuccess or the
// launch error; the caller turns it into zflow::Error). Everything is queued on `stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/quant_block_values.h"

namespace zflow::cuda {

// Storage type of activations (computed in float32 either way).
enum class Act : int { F32, BF16 };
// Storage type of a weight or per-feature vector.
enum class FloatKind : int { F32, BF16, F16 };

// A float vector or matrix in device memory in its stored dtype; data == nullptr: absent.
struct WeightRef {
  const void* data = nullptr;
  FloatKind kind = FloatKind::F32;
};

// Grid for n items at `threads` per block, capped (kernels use grid-stride loops).
unsigned grid_for(int64_t n, int threads);

// ---- copies (copy.cu) ---------------------------------------------------------------------
constexpr int kMaxCopyRank = 8;
struct CopyLayout {
  int rank = 0;
  int64_t shape[kMaxCopyRank] = {};
  int64_t strides[kMaxCopyRank] = {};  // source strides in elements
};
// dst[i] (contiguous) = src at the strided position of i, converted between float kinds.
cudaError_t launch_convert(FloatKind src_kind, const void* src, FloatKind dst_kind, void* dst,
                           const CopyLayout& layout, int64_t n, cudaStream_t stream);
// Same dtype: elements of `element_bytes` (1, 2, 4 or 8) moved as they are.
cudaError_t launch_gather(int element_bytes, const void* src, void* dst, const CopyLayout& layout,
                          int64_t n, cudaStream_t stream);

// ---- elementwise (elementwise.cu) ---------------------------------------------------------
enum class MapOp : int {
  Silu,
  Exp,
  Tanh,
  GeluErf,
  GeluTanh,
  GeluQuick,  // y = f(a)
  Affine,     // y = a * p0 + p1
  Clamp,      // y = clamp(a, p0, p1)
  LeakyRelu,  // y = a >= 0 ? a : a * p0
  Add,
  Mul,
  SiluMul,  // y = f(a, b)
};
cudaError_t launch_map(MapOp op, Act t, const void* a, const void* b, void* y, int64_t n, float p0,
                       float p1, cudaStream_t stream);
// y = x >= 0 ? x : x * slope[c] over n elements of x[B, C, plane].
cudaError_t launch_prelu(Act t, const void* x, WeightRef slope, void* y, int64_t n,
                         int64_t channels, int64_t plane, cudaStream_t stream);

// ---- rows over the last dim (norms.cu) ----------------------------------------------------
enum class RowOp : int { Softmax, RmsNorm, LayerNorm };
// What a norm does with a row's normalised values n in the same pass (cpu::NormEpilogue):
// n = n * (1 + scale) + shift, then n = residual + gate * n (+ n without a gate). Device
// pointers in the activation type; null skips a step.
struct RowEpilogue {
  const void* scale = nullptr;     // [B, D]
  const void* shift = nullptr;     // [B, D]
  const void* residual = nullptr;  // [B, L, D]
  const void* gate = nullptr;      // [B, D]
  int64_t rows_per_sample = 1;     // L
};
cudaError_t launch_rows(RowOp op, Act t, const void* x, void* y, int64_t rows, int64_t d,
                        WeightRef w, WeightRef b, float eps, const RowEpilogue& then,
                        cudaStream_t stream);

// ---- rope.cu, embedding.cu, add_gated.cu -------------------------------------------------
// RoPE on x[B, L, H, D] with tables [1 or B, L, D/2], each head first RMS-normalised (times
// `norm`, if given) when `normalise` is set.
struct RopeProblem {
  int64_t batch, len, heads, d;
  bool per_batch_table, interleaved;
  bool normalise;
  WeightRef norm;
  float eps;
};
cudaError_t launch_rope(Act t, const void* x, const float* cos, const float* sin, void* y,
                        const RopeProblem& p, cudaStream_t stream);
cudaError_t launch_embedding(Act t, WeightRef table, const int32_t* ids, void* y, int64_t n,
                             int64_t d, cudaStream_t stream);
// y = x + gate * r, for x, r [B, L, D] and gate [B, D].
cudaError_t launch_add_gated(Act t, const void* x, const void* gate, const void* r, void* y,
                             int64_t batch, int64_t len, int64_t d, cudaStream_t stream);

// ---- token layouts (tokens.cu) ------------------------------------------------------------
struct PatchLayout {
  int64_t batch, channels, height, width, patch,
      length;  // latents [B, C, H, W], tokens [B, L, p*p*C]
};
// tokens = patchify(x) (ops.h), rows past the image tokens 0.
cudaError_t launch_patchify(Act t, const void* x, void* tokens, const PatchLayout& s,
                            cudaStream_t stream);
// x = unpatchify(tokens).
cudaError_t launch_unpatchify(Act t, const void* tokens, void* x, const PatchLayout& s,
                              cudaStream_t stream);
// y = x[B, L, D] with rows [range[2b], range[2b + 1]) of sample b set to row[D] (0 when row is
// null); `range` is in device memory.
cudaError_t launch_fill_rows(Act t, const void* x, const void* row, const int64_t* range, void* y,
                             int64_t batch, int64_t len, int64_t d, cudaStream_t stream);

// ---- fp8.cu -------------------------------------------------------------------------------
enum class Fp8Kind : int { E4M3, E5M2 };
// y[i] = float(code[i]) * scale, stored as `t` (the dequantise-then-GEMM path).
cudaError_t launch_fp8_dequantize(Fp8Kind kind, const uint8_t* codes, float scale, Act t, void* y,
                                  int64_t n, cudaStream_t stream);
// Per-tensor dynamic quantisation of activations x[n] (of type t) to e4m3: amax = max |x| (into
// `amax`, one float of scratch), scale = amax / 448 (1 if amax is 0) into `scale`, and
// q[i] = e4m3(clamp(x[i] / scale, -448, 448)) rounded to nearest even.
cudaError_t launch_fp8_quantize(Act t, const void* x, int64_t n, float* amax, float* scale,
                                uint8_t* q, cudaStream_t stream);

// ---- dequant.cu ---------------------------------------------------------------------------
// y[r, :] (k values, stored as `t`) = row rows[r] (r itself when rows is null) of a GGML
// block-quantised matrix at `blocks` with row_bytes bytes a row, dequantised.
cudaError_t launch_dequantize_rows(quant::BlockKind kind, const uint8_t* blocks, int64_t row_bytes,
                                   const int32_t* rows, Act t, void* y, int64_t n_rows, int64_t k,
                                   cudaStream_t stream);

// ---- attention.cu -------------------------------------------------------------------------
struct AttentionProblem {
  int64_t batch, heads, kv_heads, lq, lk, d, dv;
  float scale;
  bool causal;
  const int32_t* key_lengths;  // [batch] on the device, or nullptr
};
// Shared memory one block needs for head dims up to max(d, dv) (0 if above 256).
size_t attention_shared_bytes(int64_t dims);
cudaError_t launch_attention(Act t, const void* q, const void* k, const void* v, void* out,
                             const AttentionProblem& p, cudaStream_t stream);

// ---- autoencoder (conv2d.cu, group_norm.cu, resample.cu) ----------------------------------
struct Im2col {
  int64_t cin, h, w, kh, kw, ow, stride, pad_top, pad_left;
};
// col[Cin * kh * kw][m] for the m output pixels from row r0 on, of one sample x[Cin, H, W].
cudaError_t launch_im2col(Act t, const void* x, void* col, const Im2col& s, int64_t r0, int64_t m,
                          cudaStream_t stream);
// y[B, C, pixels] += bias[C].
cudaError_t launch_channel_bias(Act t, void* y, WeightRef bias, int64_t channels, int64_t pixels,
                                int64_t total, cudaStream_t stream);
// stats[2 g] = mean, stats[2 g + 1] = 1 / sqrt(var + eps) of group g of `groups` groups of
// group_size contiguous values; then y = (x - mean) * rstd * gamma[c] + beta[c] (SiLU'd).
cudaError_t launch_group_norm(Act t, const void* x, float* stats, WeightRef gamma, WeightRef beta,
                              void* y, int64_t batch, int64_t channels, int64_t groups,
                              int64_t spatial, float eps, bool fuse_silu, cudaStream_t stream);
cudaError_t launch_pad2d(Act t, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                         int top, int bottom, int left, int right, cudaStream_t stream);
cudaError_t launch_upsample2x(Act t, const void* x, void* y, int64_t planes, int64_t h, int64_t w,
                              cudaStream_t stream);

}  // namespace zflow::cuda
