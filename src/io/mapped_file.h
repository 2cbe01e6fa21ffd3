// MappedFile: a whole file mapped read-only into memory (POSIX mmap). Owned through a
// shared_ptr so that Tensors borrowing its bytes keep the mapping alive after the
// reader that opened it is gone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

namespace zflow::io {

// How the caller will touch the bytes; passed to madvise.
enum class AccessPattern : uint8_t {
  Normal,
  Sequential,  // read front to back once (checksums, copies to the device)
  Random,      // a few tensors by name
};

class MappedFile {
 public:
  // Maps `path`; an empty file gives an empty span. Errors name the file.
  static std::shared_ptr<MappedFile> open(const std::filesystem::path& path,
                                          AccessPattern access = AccessPattern::Normal);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

  // Hints that [offset, offset + length) will be read soon (MADV_WILLNEED).
  void prefetch(size_t offset, size_t length) const;

 private:
  MappedFile() = default;

  std::filesystem::path path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace zflow::io
