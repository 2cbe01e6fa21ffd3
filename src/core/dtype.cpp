#include "core/dtype.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"

namespace zflow {

namespace {

struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;  // bytes per block
  bool is_float;
  int64_t block = 1;  // elements per block
};

// Block sizes and bytes as GGML lays the blocks out (gguf-py constants.GGML_QUANT_SIZES).
constexpr DTypeInfo kInfo[] = {
    {DType::F64, "F64", 8, true},          {DType::F32, "F32", 4, true},
    {DType::F16, "F16", 2, true},          {DType::BF16, "BF16", 2, true},
    {DType::F8_E4M3, "F8_E4M3", 1, true},  {DType::F8_E5M2, "F8_E5M2", 1, true},
    {DType::I64, "I64", 8, false},         {DType::I32, "I32", 4, false},
    {DType::I16, "I16", 2, false},         {DType::I8, "I8", 1, false},
    {DType::U64, "U64", 8, false},         {DType::U32, "U32", 4, false},
    {DType::U16, "U16", 2, false},         {DType::U8, "U8", 1, false},
    {DType::Bool, "BOOL", 1, false},       {DType::Q4_0, "Q4_0", 18, true, 32},
    {DType::Q4_1, "Q4_1", 20, true, 32},   {DType::Q5_0, "Q5_0", 22, true, 32},
    {DType::Q5_1, "Q5_1", 24, true, 32},   {DType::Q8_0, "Q8_0", 34, true, 32},
    {DType::Q2_K, "Q2_K", 84, true, 256},  {DType::Q3_K, "Q3_K", 110, true, 256},
    {DType::Q4_K, "Q4_K", 144, true, 256}, {DType::Q5_K, "Q5_K", 176, true, 256},
    {DType::Q6_K, "Q6_K", 210, true, 256},
};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < std::size(kInfo); ++i)
    if (static_cast<size_t>(kInfo[i].type) != i) return false;
  return std::size(kInfo) == static_cast<size_t>(DType::Q6_K) + 1;
}
static_assert(table_in_enum_order(), "kInfo must list every DType in enum order");

const DTypeInfo& info(DType t) {
  return kInfo[static_cast<size_t>(t)];
}

uint32_t bits_of(float x) {
  return std::bit_cast<uint32_t>(x);
}
float float_of(uint32_t b) {
  return std::bit_cast<float>(b);
}

// Rounds a finite, non-negative float32 (given by its bits) to a small float format
// with `exp_bits` exponent and `man_bits` mantissa bits, round-to-nearest-even,
// subnormals included. Returns the magnitude code, which may spill past the largest
// finite code: the caller decides whether that is infinity or NaN.
uint32_t round_to_small_float(uint32_t f, int exp_bits, int man_bits) {
  const int bias = (1 << (exp_bits - 1)) - 1;
  const int shift = 23 - man_bits;
  const int exp = static_cast<int>(f >> 23) - 127;  // unbiased exponent of the input
  const int min_normal_exp = 1 - bias;
  if (exp < min_normal_exp) {
    // Subnormal in the target: value = m * 2^(min_normal_exp - man_bits), m an integer.
    // Scale exactly (a power of two) and round the integer part to nearest even.
    const float x = float_of(f);
    const float scaled = std::ldexp(x, man_bits - min_normal_exp);  // exact in float32
    return static_cast<uint32_t>(std::nearbyint(scaled));           // FE_TONEAREST = RNE
  }
  // Normal: rebias the exponent, then round the dropped mantissa bits to nearest even.
  uint32_t rebiased = f - (static_cast<uint32_t>(127 - bias) << 23);
  const uint32_t lsb = (rebiased >> shift) & 1;
  rebiased += (1u << (shift - 1)) - 1 + lsb;
  return rebiased >> shift;
}

}  // namespace

size_t dtype_size(DType t) {
  ZF_CHECK(info(t).block == 1,
           "[dtype] {} is block-quantised ({} values in {} bytes): it has no per-element size",
           info(t).name, info(t).block, info(t).size);
  return info(t).size;
}
bool dtype_is_quantized(DType t) {
  return info(t).block > 1;
}
int64_t dtype_block_size(DType t) {
  return info(t).block;
}
size_t dtype_block_bytes(DType t) {
  return info(t).size;
}
size_t dtype_nbytes(DType t, int64_t n) {
  const DTypeInfo& i = info(t);
  ZF_CHECK(n >= 0 && n % i.block == 0, "[dtype] {} values of {} are not whole blocks of {}", n,
           i.name, i.block);
  return static_cast<size_t>(n / i.block) * i.size;
}
bool dtype_is_float(DType t) {
  return info(t).is_float;
}
bool dtype_is_float8(DType t) {
  return t == DType::F8_E4M3 || t == DType::F8_E5M2;
}
std::string_view dtype_name(DType t) {
  return info(t).name;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.type;
  return std::nullopt;
}

uint16_t f32_to_bf16_bits(float x) {
  const uint32_t f = bits_of(x);
  // PyTorch's vectorised tensor conversion (the path .to(torch.bfloat16) takes) writes
  // 0xFFFF for every NaN; its scalar c10::BFloat16 would give 0x7FC0.
  if (std::isnan(x)) return 0xFFFF;
  const uint32_t lsb = (f >> 16) & 1;
  return static_cast<uint16_t>((f + 0x7FFF + lsb) >> 16);
}

float bf16_bits_to_f32(uint16_t b) {
  return float_of(static_cast<uint32_t>(b) << 16);
}

uint16_t f32_to_f16_bits(float x) {
  const uint32_t f = bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((f >> 16) & 0x8000);
  const uint32_t mag = f & 0x7FFFFFFF;
  // NaN: PyTorch's tensor conversion (F16C vcvtps2ph) keeps the sign and the top payload
  // bits and sets the quiet bit.
  if (mag > 0x7F800000) return sign | 0x7E00 | static_cast<uint16_t>((mag >> 13) & 0x3FF);
  if (mag >= 0x477FF000) return sign | 0x7C00;  // rounds past 65504: infinity
  return sign | static_cast<uint16_t>(round_to_small_float(mag, 5, 10));
}

float f16_bits_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t man = h & 0x3FF;
  if (exp == 0x1F) return float_of(sign | 0x7F800000 | (man << 13));
  if (exp == 0) {
    const float v = std::ldexp(static_cast<float>(man), -24);
    return sign ? -v : v;
  }
  return float_of(sign | ((exp + 112) << 23) | (man << 13));
}

uint8_t f32_to_f8e4m3_bits(float x) {
  const uint32_t f = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((f >> 24) & 0x80);
  const uint32_t mag = f & 0x7FFFFFFF;
  if (mag > 0x7F800000) return sign | 0x7F;  // NaN keeps its sign
  // e4m3fn has no infinity: PyTorch (2.15) saturates overflow and infinities to +-448.
  const uint32_t code = mag == 0x7F800000 ? 0x7E : round_to_small_float(mag, 4, 3);
  return sign | static_cast<uint8_t>(code > 0x7E ? 0x7E : code);
}

float f8e4m3_bits_to_f32(uint8_t b) {
  const bool neg = b & 0x80;
  const uint32_t exp = (b >> 3) & 0xF;
  const uint32_t man = b & 0x7;
  float v;
  if (exp == 0xF && man == 0x7)
    v = NAN;
  else if (exp == 0)
    v = std::ldexp(static_cast<float>(man), -9);
  else
    v = std::ldexp(1.0f + man / 8.0f, static_cast<int>(exp) - 7);
  return neg ? -v : v;
}

uint8_t f32_to_f8e5m2_bits(float x) {
  const uint32_t f = bits_of(x);
  const uint8_t sign = static_cast<uint8_t>((f >> 24) & 0x80);
  const uint32_t mag = f & 0x7FFFFFFF;
  if (mag > 0x7F800000) return sign | 0x7F;
  const uint32_t code = mag >= 0x7F800000 ? 0x7C : round_to_small_float(mag, 5, 2);
  return sign | static_cast<uint8_t>(code > 0x7C ? 0x7C : code);  // overflow -> infinity
}

float f8e5m2_bits_to_f32(uint8_t b) {
  return f16_bits_to_f32(static_cast<uint16_t>(b) << 8);
}

void to_f32(const void* src, DType src_type, float* dst, size_t n) {
  switch (src_type) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q8_0:
    case DType::Q2_K:
    case DType::Q3_K:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
      dequantize_blocks(src_type, src, dst, static_cast<int64_t>(n));
      return;
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_bits_to_f32(s[i]);
      return;
    }
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(s[i]);
      return;
    }
    default:
      convert(src, src_type, dst, DType::F32, n);
  }
}

void from_f32(const float* src, void* dst, DType dst_type, size_t n) {
  if (dtype_is_quantized(dst_type)) {
    quantize_blocks(dst_type, src, dst, static_cast<int64_t>(n));
    return;
  }
  switch (dst_type) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16_bits(src[i]);
      return;
    }
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16_bits(src[i]);
      return;
    }
    default:
      convert(src, DType::F32, dst, dst_type, n);
  }
}

namespace {

double load_float(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::F64:
      return static_cast<const double*>(p)[i];
    case DType::F32:
      return static_cast<const float*>(p)[i];
    case DType::F16:
      return f16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::BF16:
      return bf16_bits_to_f32(static_cast<const uint16_t*>(p)[i]);
    case DType::F8_E4M3:
      return f8e4m3_bits_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::F8_E5M2:
      return f8e5m2_bits_to_f32(static_cast<const uint8_t*>(p)[i]);
    case DType::I64:
      return static_cast<double>(static_cast<const int64_t*>(p)[i]);
    case DType::I32:
      return static_cast<const int32_t*>(p)[i];
    case DType::I16:
      return static_cast<const int16_t*>(p)[i];
    case DType::I8:
      return static_cast<const int8_t*>(p)[i];
    case DType::U64:
      return static_cast<double>(static_cast<const uint64_t*>(p)[i]);
    case DType::U32:
      return static_cast<const uint32_t*>(p)[i];
    case DType::U16:
      return static_cast<const uint16_t*>(p)[i];
    case DType::U8:
      return static_cast<const uint8_t*>(p)[i];
    case DType::Bool:
      return static_cast<const uint8_t*>(p)[i] != 0;
    default:  // block-quantised types go through to_f32 / from_f32 in convert()
      break;
  }
  return 0;
}

int64_t load_int(const void* p, DType t, size_t i) {
  switch (t) {
    case DType::I64:
      return static_cast<const int64_t*>(p)[i];
    case DType::U64:
      return static_cast<int64_t>(static_cast<const uint64_t*>(p)[i]);
    default: {
      const double v = load_float(p, t, i);
      return std::isfinite(v) ? static_cast<int64_t>(v) : 0;
    }
  }
}

// Floats are narrowed in one rounding from float64 through float32 (exact for all
// float32 inputs, which is the only case the engine converts).
void store(void* p, DType t, size_t i, double v, int64_t iv) {
  switch (t) {
    case DType::F64:
      static_cast<double*>(p)[i] = v;
      return;
    case DType::F32:
      static_cast<float*>(p)[i] = static_cast<float>(v);
      return;
    case DType::F16:
      static_cast<uint16_t*>(p)[i] = f32_to_f16_bits(static_cast<float>(v));
      return;
    case DType::BF16:
      static_cast<uint16_t*>(p)[i] = f32_to_bf16_bits(static_cast<float>(v));
      return;
    case DType::F8_E4M3:
      static_cast<uint8_t*>(p)[i] = f32_to_f8e4m3_bits(static_cast<float>(v));
      return;
    case DType::F8_E5M2:
      static_cast<uint8_t*>(p)[i] = f32_to_f8e5m2_bits(static_cast<float>(v));
      return;
    case DType::I64:
      static_cast<int64_t*>(p)[i] = iv;
      return;
    case DType::I32:
      static_cast<int32_t*>(p)[i] = static_cast<int32_t>(iv);
      return;
    case DType::I16:
      static_cast<int16_t*>(p)[i] = static_cast<int16_t>(iv);
      return;
    case DType::I8:
      static_cast<int8_t*>(p)[i] = static_cast<int8_t>(iv);
      return;
    case DType::U64:
      static_cast<uint64_t*>(p)[i] = static_cast<uint64_t>(iv);
      return;
    case DType::U32:
      static_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(iv);
      return;
    case DType::U16:
      static_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(iv);
      return;
    case DType::U8:
      static_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(iv);
      return;
    case DType::Bool:
      static_cast<uint8_t*>(p)[i] = v != 0 || iv != 0;
      return;
    default:  // block-quantised types go through to_f32 / from_f32 in convert()
      return;
  }
}

}  // namespace

void convert(const void* src, DType src_type, void* dst, DType dst_type, size_t n) {
  if (src_type == dst_type) {
    std::memcpy(dst, src, dtype_nbytes(src_type, static_cast<int64_t>(n)));
    return;
  }
  if (dtype_is_quantized(src_type) || dtype_is_quantized(dst_type)) {
    // Through float32, one block-sized chunk at a time (no buffer the size of a tensor).
    const int64_t step = std::max(dtype_block_size(src_type), dtype_block_size(dst_type));
    ZF_CHECK(static_cast<int64_t>(n) % step == 0,
             "[convert] {} values from {} to {} are not whole blocks of {}", n,
             dtype_name(src_type), dtype_name(dst_type), step);
    const auto* s = static_cast<const char*>(src);
    auto* d = static_cast<char*>(dst);
    auto run = [&](int64_t first, int64_t last) {  // chunks [first, last)
      float chunk[256];
      for (int64_t i = first * step; i < last * step; i += step) {
        if (dtype_is_quantized(src_type))
          to_f32(s + dtype_nbytes(src_type, i), src_type, chunk, static_cast<size_t>(step));
        else
          convert(s + dtype_nbytes(src_type, i), src_type, chunk, DType::F32,
                  static_cast<size_t>(step));
        if (dtype_is_quantized(dst_type))
          from_f32(chunk, d + dtype_nbytes(dst_type, i), dst_type, static_cast<size_t>(step));
        else
          convert(chunk, DType::F32, d + dtype_nbytes(dst_type, i), dst_type,
                  static_cast<size_t>(step));
      }
    };
    // Blocks are independent, so a large tensor is shared between threads (the k-quants'
    // scale search makes quantising a 6-billion-weight model minutes of work per core).
    const int64_t chunks = static_cast<int64_t>(n) / step;
    constexpr int64_t kValuesPerTask = int64_t{1} << 16;
    if (static_cast<int64_t>(n) < 4 * kValuesPerTask)
      run(0, chunks);
    else
      parallel_for(chunks, run, kValuesPerTask / step);
    return;
  }
  const bool int_path = !dtype_is_float(src_type) && !dtype_is_float(dst_type);
  for (size_t i = 0; i < n; ++i) {
    const double v = int_path ? 0.0 : load_float(src, src_type, i);
    const int64_t iv = int_path || !dtype_is_float(dst_type) ? load_int(src, src_type, i) : 0;
    store(dst, dst_type, i, v, iv);
  }
}

}  // namespace zflow
