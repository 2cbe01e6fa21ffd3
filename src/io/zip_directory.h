// The directory of a ZIP archive held in memory: each entry's name and where its stored bytes lie,
// so they can be used in place (zero-copy over a memory-mapped file). PyTorch's torch.save writes
// this format (PyTorchStreamWriter: every entry stored, uncompressed, its data 64-byte aligned),
// which is why zflow reads the directory itself rather than through a zip library, whose API
// copies entries out instead of telling where they are. ZIP64 archives (over 4 GB or 65535
// entries) are read too. Every malformed structure is an Error naming `source`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace zflow::io {

struct ZipEntry {
  std::string name;
  uint64_t offset = 0;  // of its data in the archive
  uint64_t size = 0;    // stored bytes
  bool stored = true;   // false: compressed (method != 0), so its bytes cannot be used in place
};

// Whether the bytes begin like a ZIP archive ("PK\3\4").
bool starts_with_zip_magic(std::span<const uint8_t> bytes);

// The entries of the archive, in directory order, each range checked against the archive's size.
std::vector<ZipEntry> read_zip_directory(std::span<const uint8_t> archive,
                                         const std::string& source);

}  // namespace zflow::io
