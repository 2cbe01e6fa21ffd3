// Element types: every dtype the safetensors format names, plus the conversions
// to and from float32 that round exactly as PyTorch does (round-to-nearest-even;
// NaN as PyTorch's tensor conversion writes it; float8 e4m3fn saturates at +-448, e5m2
// overflows to inf). And GGML's block-quantised types (GGUF files): values stored in
// blocks of 32 or 256 along the innermost dimension, each block a few scales plus packed
// integers; their layouts and (de)quantisation are in core/quant_blocks.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace zflow {

enum class DType : uint8_t {
  F64,
  F32,
  F16,
  BF16,
  F8_E4M3,  // e4m3fn: no infinities, 0x7F/0xFF are NaN, max 448
  F8_E5M2,  // IEEE-like: infinities and NaNs, max 57344
  I64,
  I32,
  I16,
  I8,
  U64,
  U32,
  U16,
  U8,
  Bool,
  // Block-quantised (GGML layouts). A tensor of these has an innermost dim that is a
  // whole number of blocks; byte sizes come from dtype_nbytes, never dtype_size.
  Q4_0,
  Q4_1,
  Q5_0,
  Q5_1,
  Q8_0,
  Q2_K,
  Q3_K,
  Q4_K,
  Q5_K,
  Q6_K,
};

// Bytes per element; an Error for block-quantised types, which have none.
size_t dtype_size(DType t);
bool dtype_is_float(DType t);  // true for the block-quantised types too
bool dtype_is_quantized(DType t);
bool dtype_is_float8(DType t);  // F8_E4M3 or F8_E5M2
// Elements per block (1 for plain types) and bytes per block (dtype_size for plain types).
int64_t dtype_block_size(DType t);
size_t dtype_block_bytes(DType t);
// Bytes that n consecutive elements occupy; for a block type n must be whole blocks.
size_t dtype_nbytes(DType t, int64_t n);
// The safetensors spelling ("F32", "BF16", "F8_E4M3", "BOOL", ...); GGML's for block types
// ("Q8_0", "Q4_K").
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);

// Scalar conversions, bit patterns in and out.
uint16_t f32_to_bf16_bits(float x);
float bf16_bits_to_f32(uint16_t b);
uint16_t f32_to_f16_bits(float x);
float f16_bits_to_f32(uint16_t h);
uint8_t f32_to_f8e4m3_bits(float x);
float f8e4m3_bits_to_f32(uint8_t b);
uint8_t f32_to_f8e5m2_bits(float x);
float f8e5m2_bits_to_f32(uint8_t b);

// Converts n elements between any two dtypes through float64 for floats and int64
// for integers (float -> integer truncates toward zero as a C++ / PyTorch cast does).
// A block-quantised source is dequantised, a block-quantised destination quantised
// (quantize_blocks: an Error for the types without a quantiser); n must be whole blocks.
void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t n);

// Fast paths used by kernels: a run of stored values widened to float32.
void to_f32(const void* src, DType src_type, float* dst, size_t n);
void from_f32(const float* src, void* dst, DType dst_type, size_t n);

}  // namespace zflow
