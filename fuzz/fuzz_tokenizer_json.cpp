// Fuzzes loading a tokenizer.json (the streaming vocab/merges reader, added tokens, the
// normaliser and pre-tokenizer settings, the split regex compiled from the file) and then
// encoding a fixed text with it. Any zflow::Error is a correct rejection; any other
// exception, crash, sanitizer report, timeout or huge allocation is a bug. The loader reads
// files, so each input is written to a file in /dev/shm (memory) first.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "text/bpe_tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      "/dev/shm/zflow_fuzz_tokenizer_" + std::to_string(getpid()) + ".json";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    const auto tokenizer = zflow::text::BpeTokenizer::from_tokenizer_json(path);
    const auto ids = tokenizer.encode("Hello, 世界! <|im_start|> 123  \n\t done");
    tokenizer.decode(ids);
  } catch (const zflow::Error&) {
  }
  return 0;
}
