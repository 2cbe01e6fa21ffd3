// safetensors: a memory-mapped reader (and a writer) for the format Hugging Face,
// diffusers and ComfyUI publish weights in.
//   [8-byte little-endian header length N][N bytes of JSON header][data section]
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end)} relative
// to the data section, plus an optional "__metadata__" string map. Every field is
// validated before a byte of tensor data is touched; a bad file gives one Error that
// names the file and the tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace zflow::io {

class MappedFile;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0;  // byte offsets within the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in file order (by begin offset)
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute byte offset of the data section
};

// The largest header accepted, as in the reference implementation: a longer length
// field means a corrupt or foreign file, and must not cause a huge allocation.
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

// Parses and validates the header of a file of `file_size` bytes whose first bytes are
// `prefix` (at least the 8-byte length and the JSON). `source` names the file in errors.
// The rules follow the reference crate's validation: tensors, sorted by offset, must
// tile the data section exactly (no overlap, no gap, no trailing bytes) and each one's
// byte size must equal numel * dtype size. Exposed for the fuzz target and for tests.
SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> prefix, uint64_t file_size,
                                           const std::string& source);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(const std::string& name) const;  // nullptr if absent
  // A zero-copy tensor over the mapping (a copy only when the offset is misaligned for
  // the dtype); errors name the file if `name` is absent.
  Tensor tensor(const std::string& name) const;
  const std::shared_ptr<MappedFile>& mapped_file() const { return file_; }

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;
  std::shared_ptr<Storage> storage_;  // the whole mapping, shared by every tensor
  SafetensorsHeader header_;
  std::map<std::string, size_t> index_;
};

// Writes tensors (any host tensors, made contiguous) and metadata as a safetensors file:
// data in the order given, "__metadata__" first in the header, the header padded with
// spaces to a multiple of 8 bytes as the reference writer does. Writes a temporary
// file beside `path` and renames it, so a failure never leaves a half-written file.
void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// A tensor that write_safetensors_streamed makes only when it reaches it, so that a file larger
// than memory (a converted model) is written one tensor at a time. `make` must return a host
// tensor of exactly this shape and dtype.
struct SafetensorsSource {
  std::string name;
  Shape shape;
  DType dtype;
  std::function<Tensor()> make;
};

// write_safetensors for tensors made in the order given, each released once written.
void write_safetensors_streamed(const std::filesystem::path& path,
                                const std::vector<SafetensorsSource>& tensors,
                                const std::map<std::string, std::string>& metadata = {});

}  // namespace zflow::io
