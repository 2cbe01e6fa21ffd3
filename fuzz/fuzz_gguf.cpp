// Fuzzes the GGUF header parser and block dequantisation. Any zflow::Error is a correct
// rejection; any other exception, crash, sanitizer report, timeout or huge allocation is a
// bug. Each input is parsed as a whole file; when it parses, every tensor (up to a size cap,
// so one input stays fast) is taken over the input's bytes as GgufFile does (a view, or a
// copy where plain elements sit unaligned) and widened to float32, which reads exactly the
// bytes the header vouched for.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "core/error.h"
#include "core/tensor.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kMaxValues = 1 << 16;
  try {
    const zflow::io::GgufHeader h = zflow::io::parse_gguf_header({data, size}, size, "fuzz.gguf");
    auto storage = zflow::Storage::borrow(const_cast<uint8_t*>(data), size, nullptr);
    for (const auto& t : h.tensors) {
      if (zflow::shape_numel(t.shape) > kMaxValues || t.shape.empty()) continue;
      zflow::io::gguf_tensor(storage, h, t).to(zflow::DType::F32);
    }
  } catch (const zflow::Error&) {
  }
  return 0;
}
