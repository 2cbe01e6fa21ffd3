#include "io/zip_directory.h"

#include <algorithm>

#include "core/error.h"

namespace zflow::io {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr uint32_t kCentralHeader = 0x02014b50;
constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint16_t kZip64Extra = 0x0001;
constexpr size_t kEndOfDirectorySize = 22;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;

// Little-endian reads at checked offsets.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  uint64_t read(uint64_t at, int width, const char* what) const {
    ZF_CHECK(at <= bytes_.size() && width <= static_cast<int64_t>(bytes_.size() - at),
             "[zip] {}: the {} at byte {} runs past the end of the archive ({} bytes)", source_,
             what, at, bytes_.size());
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = (v << 8) | bytes_[at + i];
    return v;
  }
  uint32_t u32(uint64_t at, const char* what) const {
    return static_cast<uint32_t>(read(at, 4, what));
  }
  uint16_t u16(uint64_t at, const char* what) const {
    return static_cast<uint16_t>(read(at, 2, what));
  }
  uint64_t u64(uint64_t at, const char* what) const { return read(at, 8, what); }
  std::string text(uint64_t at, uint64_t length, const char* what) const {
    if (length > 0) read(at + length - 1, 1, what);
    return {reinterpret_cast<const char*>(bytes_.data() + at), static_cast<size_t>(length)};
  }
  size_t size() const { return bytes_.size(); }
  const std::string& source() const { return source_; }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& source_;
};

struct Directory {
  uint64_t entries = 0, offset = 0;
};

// The end-of-directory record lies in the last 22 + 65535 bytes (its comment is at most that).
uint64_t find_end_of_directory(const Reader& r) {
  ZF_CHECK(r.size() >= kEndOfDirectorySize, "[zip] {}: {} bytes is too short for a ZIP archive",
           r.source(), r.size());
  const uint64_t last = r.size() - kEndOfDirectorySize;
  const uint64_t first = last > 0xFFFF ? last - 0xFFFF : 0;
  for (uint64_t at = last + 1; at-- > first;)
    if (r.u32(at, "end of directory") == kEndOfDirectory) return at;
  fail("[zip] {}: no end-of-directory record: not a ZIP archive, or a truncated one", r.source());
}

Directory read_directory_location(const Reader& r) {
  const uint64_t end = find_end_of_directory(r);
  Directory d{r.u16(end + 10, "entry count"), r.u32(end + 16, "directory offset")};
  const bool zip64 = d.entries == 0xFFFF || d.offset == 0xFFFFFFFF;
  if (!zip64) return d;
  ZF_CHECK(end >= 20 && r.u32(end - 20, "ZIP64 locator") == kZip64Locator,
           "[zip] {}: the end-of-directory record asks for ZIP64 but has no ZIP64 locator",
           r.source());
  const uint64_t record = r.u64(end - 20 + 8, "ZIP64 record offset");
  ZF_CHECK(r.u32(record, "ZIP64 end of directory") == kZip64EndOfDirectory,
           "[zip] {}: no ZIP64 end-of-directory record at byte {}", r.source(), record);
  return {r.u64(record + 32, "ZIP64 entry count"), r.u64(record + 48, "ZIP64 directory offset")};
}

// The ZIP64 extra field's 8-byte values replace, in order, the 32-bit sizes and offset that
// are 0xFFFFFFFF.
void apply_zip64_extra(const Reader& r, uint64_t extra, uint64_t extra_end, uint64_t& size,
                       uint64_t& compressed, uint64_t& local) {
  while (extra + 4 <= extra_end) {
    const uint16_t id = r.u16(extra, "extra field id");
    const uint16_t length = r.u16(extra + 2, "extra field length");
    ZF_CHECK(extra + 4 + length <= extra_end,
             "[zip] {}: an extra field at byte {} runs past its "
             "directory entry",
             r.source(), extra);
    if (id == kZip64Extra) {
      uint64_t at = extra + 4;
      for (uint64_t* v : {&size, &compressed, &local}) {
        if (*v != 0xFFFFFFFF) continue;
        ZF_CHECK(at + 8 <= extra + 4 + length,
                 "[zip] {}: a ZIP64 extra field at byte {} is "
                 "too short for the values it replaces",
                 r.source(), extra);
        *v = r.u64(at, "ZIP64 value");
        at += 8;
      }
    }
    extra += 4 + length;
  }
}

}  // namespace

bool starts_with_zip_magic(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4;
}

std::vector<ZipEntry> read_zip_directory(std::span<const uint8_t> archive,
                                         const std::string& source) {
  const Reader r(archive, source);
  const Directory d = read_directory_location(r);
  // Each entry takes at least 46 bytes: a count past that is a corrupt header, not a big archive.
  ZF_CHECK(d.entries <= r.size() / kCentralHeaderSize,
           "[zip] {}: the directory claims {} entries, more than {} bytes can hold", source,
           d.entries, r.size());
  std::vector<ZipEntry> entries;
  uint64_t at = d.offset;
  for (uint64_t i = 0; i < d.entries; ++i) {
    ZF_CHECK(r.u32(at, "directory entry") == kCentralHeader,
             "[zip] {}: directory entry {} at byte {} has no entry signature", source, i, at);
    const uint16_t method = r.u16(at + 10, "compression method");
    uint64_t compressed = r.u32(at + 20, "compressed size");
    uint64_t size = r.u32(at + 24, "size");
    const uint16_t name_length = r.u16(at + 28, "name length");
    const uint16_t extra_length = r.u16(at + 30, "extra length");
    const uint16_t comment_length = r.u16(at + 32, "comment length");
    uint64_t local = r.u32(at + 42, "local header offset");
    ZipEntry e;
    e.name = r.text(at + kCentralHeaderSize, name_length, "entry name");
    const uint64_t extra = at + kCentralHeaderSize + name_length;
    apply_zip64_extra(r, extra, extra + extra_length, size, compressed, local);
    e.stored = method == 0;
    ZF_CHECK(!e.stored || compressed == size,
             "[zip] {}: stored entry '{}' has {} bytes but a size of {}", source, e.name,
             compressed, size);
    ZF_CHECK(r.u32(local, "local header") == kLocalHeader,
             "[zip] {}: entry '{}' has no local header at byte {}", source, e.name, local);
    e.offset = local + kLocalHeaderSize + r.u16(local + 26, "local name length") +
               r.u16(local + 28, "local extra length");
    e.size = compressed;
    ZF_CHECK(e.offset <= r.size() && e.size <= r.size() - e.offset,
             "[zip] {}: entry '{}' ({} bytes at byte {}) runs past the end of the archive ({} "
             "bytes)",
             source, e.name, e.size, e.offset, r.size());
    entries.push_back(std::move(e));
    at += kCentralHeaderSize + name_length + extra_length + comment_length;
  }
  return entries;
}

}  // namespace zflow::io
