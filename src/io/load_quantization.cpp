#include "io/load_quantization.h"

#include "core/error.h"
#include "io/fp8_weights.h"
#include "io/int8_weights.h"

namespace zflow::io {

WeightStore quantize_at_load(WeightStore store, LoadQuantization quantize, Device device) {
  switch (quantize) {
    case LoadQuantization::None:
      return store;
    case LoadQuantization::Fp8:
      return quantize_weights_fp8(std::move(store));
    case LoadQuantization::Int8:
      ZF_CHECK(device == Device::CPU,
               "[load] --int8 makes weights for the CPU's int8 matmuls; on a GPU use --fp8 "
               "(half the memory of bf16 there too)");
      return quantize_weights_int8(std::move(store));
  }
  return store;
}

}  // namespace zflow::io
