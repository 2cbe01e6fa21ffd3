// Int8 matrix multiply with a float32 epilogue, for the W8A8 linear of ComfyUI's int8 weights
// (backend/cpu/linear_int8.cpp):
//   c[i, j] = float(sum_p a[i, p] * b[j, p]) * (row_scale[i] * col_scale[j]) + bias[j]
// with A (M x K, the quantised activations) and B (N x K, a Linear weight) int8, row-major,
// and the sums exact: accumulated in int32, as torch._int_mm does. The scale product is
// rounded to float32 before it multiplies, and the bias added after, as comfy-kitchen's
// int8_linear does; no step is fused.
//
// It runs on AVX-512 VNNI (Ice Lake, Sapphire Rapids, Zen 4 and later), whose vpdpbusd
// multiplies 64 byte pairs per instruction: four times the int8 products of a float32 FMA and
// twice those of vdpbf16ps. Elsewhere ops::linear computes the same sums through gemm in
// floats (exact there too, while they stay below 2^24).
#pragma once

#include <cstdint>

namespace zflow::cpu {

struct GemmS8Args {
  int64_t m = 0, n = 0, k = 0;
  const int8_t* a = nullptr;
  int64_t lda = 0;
  const int8_t* b = nullptr;
  int64_t ldb = 0;
  const float* row_scale = nullptr;  // [m]
  const float* col_scale = nullptr;  // [n]
  const float* bias = nullptr;       // [n], or null for none
  float* c = nullptr;
  int64_t ldc = 0;
};

// The deepest K whose sums (and the kernel's offset sums, up to 255 * 128 per product) stay
// inside int32.
inline constexpr int64_t kGemmS8MaxDepth = 65536;

// One output of the formula above from its integer sum (as a float: exact below 2^24), in
// comfy-kitchen's order; the scalar form both int8 product paths share (the kernel's vector
// epilogue rounds the same steps).
inline float int8_product_output(float sum, float row_scale, float col_scale, const float* bias) {
  const float y = sum * (row_scale * col_scale);
  return bias != nullptr ? y + *bias : y;
}

// Whether this processor runs gemm_s8 (AVX-512 VNNI with BW).
bool gemm_s8_available();

// Fails, naming the argument, on bad sizes or strides, K above kGemmS8MaxDepth, or a processor
// without gemm_s8_available().
void gemm_s8(const GemmS8Args& args);

}  // namespace zflow::cpu
