// Token embedding lookup: rows of a table kept in its stored dtype (GGML block types, scaled
// float8 and int8 with row scales included), widened or dequantised to float32.
#include <cstring>

#include "backend/cpu/kernels.h"
#include "core/hadamard.h"

namespace zflow::cpu {

Tensor embedding(const Tensor& table, std::span<const int32_t> ids) {
  const int64_t d = table.size(1);
  const size_t row_bytes = dtype_nbytes(table.dtype(), d);  // GGML block rows are whole blocks
  Tensor y = Tensor::empty({static_cast<int64_t>(ids.size()), d}, DType::F32);
  const char* base = static_cast<const char*>(table.raw());
  float* out = y.data<float>();
  for (size_t i = 0; i < ids.size(); ++i)
    to_f32(base + static_cast<size_t>(ids[i]) * row_bytes, table.dtype(), out + i * d,
           static_cast<size_t>(d));
  if (table.scale() != 1.0f)
    for (int64_t i = 0; i < y.numel(); ++i) out[i] *= table.scale();
  if (const std::span<const float> scales = table.row_scales(); !scales.empty()) {
    // comfy-kitchen's dequantize_int8_embedding: the row times its scale, rotated back.
    for (size_t i = 0; i < ids.size(); ++i) {
      float* row = out + i * d;
      for (int64_t j = 0; j < d; ++j) row[j] *= scales[ids[i]];
      if (table.hadamard_group() > 0) rotate_hadamard_groups(row, d, table.hadamard_group());
    }
  }
  return y;
}

}  // namespace zflow::cpu
