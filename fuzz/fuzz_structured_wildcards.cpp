// Fuzzes the reader of structured wildcard files: any bytes, read as a .yaml and as a .json
// file. Any zflow::Error is a correct rejection; any other exception, crash, sanitizer report or
// timeout is a bug (deep nesting and YAML alias bombs included).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "text/structured_wildcards.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path base =
      std::filesystem::temp_directory_path() / ("zflow_fuzz_wildcards_" + std::to_string(getpid()));
  for (const char* extension : {".yaml", ".json"}) {
    std::filesystem::path file = base;
    file += extension;
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(data), size);
    try {
      zflow::text::read_structured_wildcards(file);
    } catch (const zflow::Error&) {
    }
    std::filesystem::remove(file);
  }
  return 0;
}
