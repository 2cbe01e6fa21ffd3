// Fuzzes the safetensors header parser. Any zflow::Error is a correct rejection; any
// other exception, crash, sanitizer report, timeout or huge allocation is a bug.
// Each input is tried two ways:
//   - as a whole file (length field, JSON, data), which exercises the length checks;
//   - as [2-byte little-endian data size][JSON text], wrapped with a correct length
//     field, so mutations of the JSON reach the tensor and coverage checks without
//     having to keep the length field and the data size in step.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

namespace {

void parse(std::span<const uint8_t> prefix, uint64_t file_size) {
  try {
    zflow::io::parse_safetensors_header(prefix, file_size, "fuzz.safetensors");
  } catch (const zflow::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse({data, size}, size);
  if (size < 2) return 0;

  const uint64_t data_size = data[0] | (uint64_t{data[1]} << 8);
  const uint64_t json_size = size - 2;
  std::vector<uint8_t> file(8 + json_size);
  for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(json_size >> (8 * i));
  std::copy(data + 2, data + size, file.begin() + 8);
  parse(file, file.size() + data_size);  // the data bytes are never read by the parser
  return 0;
}
