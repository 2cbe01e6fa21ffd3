// Fuzzes the safetensors header parser with the input as a whole file. Any zflow::Error
// is a correct rejection; any other exception, crash, sanitizer report, leak, timeout
// or huge allocation is a bug.
#include <cstddef>
#include <cstdint>
#include <span>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    zflow::io::parse_safetensors_header(std::span<const uint8_t>(data, size), size,
                                        "fuzz.safetensors");
  } catch (const zflow::Error&) {
  }
  return 0;
}
