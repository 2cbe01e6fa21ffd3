// Fuzzes how ComfyUI's quantised layers are resolved as a file loads (io/int8_weights.h, then
// io/fp8_weights.h, the order WeightStore::open runs them): the layer's comfy_quant JSON, a
// `_quantization_metadata` header, its weight's dtype and shape, and its scale's shape and value
// all come from the input. Any zflow::Error is a correct rejection. A resolved weight is then
// dequantised (an int8 one rotated back by its ConvRot group), so a group or scale that slipped
// through unchecked shows as a crash or a sanitizer report.
// Input: [rows][cols][dtype][scale form][4 bytes: scale value][comfy_quant JSON]\0[metadata JSON]
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "core/error.h"
#include "io/fp8_weights.h"
#include "io/int8_weights.h"

namespace {

using zflow::DType;
using zflow::Tensor;

Tensor bytes_of(const std::string& text) {
  Tensor t = Tensor::empty({static_cast<int64_t>(text.size())}, DType::U8);
  if (!text.empty()) std::memcpy(t.raw(), text.data(), text.size());
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  const int64_t rows = 1 + data[0] % 16, cols = 1 + data[1] % 64;
  const DType dtypes[] = {DType::I8, DType::F8_E4M3, DType::BF16, DType::I8};
  const DType dtype = dtypes[data[2] % 4];
  float value;
  std::memcpy(&value, data + 4, sizeof value);
  const std::string rest(reinterpret_cast<const char*>(data + 8), size - 8);
  const size_t nul = rest.find('\0');
  const std::string settings = rest.substr(0, nul);
  std::vector<std::string> metadata;
  if (nul != std::string::npos) metadata.push_back(rest.substr(nul + 1));

  zflow::io::WeightStore store;
  Tensor w = Tensor::zeros({rows, cols}, dtype);
  std::memset(w.raw(), data[1], std::min<size_t>(w.nbytes(), 8));  // a few nonzero codes
  store.add("blk.proj.weight", w, "fuzz.safetensors");
  const int form = data[3] % 5;  // none, one value, [rows], [rows, 1], [rows + 1]
  if (form > 0) {
    const zflow::Shape shape = form == 1   ? zflow::Shape{}
                               : form == 2 ? zflow::Shape{rows}
                               : form == 3 ? zflow::Shape{rows, 1}
                                           : zflow::Shape{rows + 1};
    Tensor scale = Tensor::empty(shape, DType::F32);
    for (int64_t i = 0; i < scale.numel(); ++i) scale.data<float>()[i] = value;
    store.add("blk.proj.weight_scale", scale, "fuzz.safetensors");
  }
  if (!settings.empty()) store.add("blk.proj.comfy_quant", bytes_of(settings), "fuzz.safetensors");
  try {
    zflow::io::resolve_int8_weights(store, metadata);
    zflow::io::resolve_fp8_weights(store, metadata);
    (void)store.get("blk.proj.weight").to(DType::F32);
  } catch (const zflow::Error&) {
  }
  return 0;
}
