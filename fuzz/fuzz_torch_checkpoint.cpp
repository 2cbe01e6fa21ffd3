// Fuzzes the PyTorch checkpoint reader: the ZIP directory, the restricted pickle machine and the
// tensor views over the archive. Any zflow::Error is a correct rejection; any other exception,
// crash, sanitizer report, timeout or huge allocation is a bug. When an input parses, every
// tensor (up to a size cap) is widened to float32, which reads exactly the bytes the checks
// vouched for.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "core/tensor.h"
#include "io/torch_checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kMaxValues = 1 << 16;
  try {
    for (const auto& [name, tensor] :
         zflow::io::read_torch_checkpoint({data, size}, nullptr, "fuzz.pt")) {
      if (tensor.numel() > kMaxValues) continue;
      const zflow::DType t = tensor.dtype();
      if (t == zflow::DType::F32 || t == zflow::DType::F16 || t == zflow::DType::BF16 ||
          t == zflow::DType::F64)
        tensor.to(zflow::DType::F32);
    }
  } catch (const zflow::Error&) {
  }
  return 0;
}
