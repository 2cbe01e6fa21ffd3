// AVX-512 forms of core/int8_rows.h's row scale and quantiser for the activations of the W8A8
// linear (linear_int8.cpp): equal to the scalar definitions to the bit, a row with a NaN
// included (its scale NaN, the NaN's code 0).
#pragma once

#include <cstdint>

namespace zflow::cpu {

// Whether this processor runs them (AVX-512 F and BW).
bool int8_rows_avx512_available();

float int8_row_scale_avx512(const float* x, int64_t n);
void quantize_int8_row_avx512(const float* x, int64_t n, float scale, int8_t* q);

}  // namespace zflow::cpu
