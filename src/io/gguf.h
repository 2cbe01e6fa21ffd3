// GGUF: a memory-mapped reader (and a writer) for llama.cpp's weight format, which
// ComfyUI-GGUF, stable-diffusion.cpp and llama.cpp publish quantised models in.
// Layout (version 2 and 3, little-endian; ggml/docs/gguf.md):
//   "GGUF" u32 version, u64 tensor_count, u64 kv_count
//   kv_count x  [string key][u32 value type][value]
//   tensor_count x [string name][u32 n_dims][u64 ne[n_dims]][u32 ggml type][u64 offset]
//   padding to `general.alignment` (default 32), then the data section; each tensor's
//   offset is relative to it and a multiple of the alignment.
// string = u64 length + UTF-8 bytes; an array value = u32 element type, u64 count, elements.
// ne[0] is the innermost (fastest-varying) dimension, so the torch shape is ne reversed.
// Every count, length, offset and size is checked against the file before it is used; a
// bad file gives one Error naming the file and the key or tensor.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace zflow::io {

class MappedFile;

enum class GgufType : uint32_t {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "UINT32", as gguf-py spells it

// One metadata value. Integers and bools are kept as int64 (a UINT64 above INT64_MAX is kept
// bit for bit: as_uint64 gives it back), floats as double; arrays hold their elements.
class GgufValue {
 public:
  GgufValue() = default;
  static GgufValue of_uint8(uint8_t v) { return integer(GgufType::Uint8, v); }
  static GgufValue of_int8(int8_t v) { return integer(GgufType::Int8, v); }
  static GgufValue of_uint16(uint16_t v) { return integer(GgufType::Uint16, v); }
  static GgufValue of_int16(int16_t v) { return integer(GgufType::Int16, v); }
  static GgufValue of_uint32(uint32_t v) { return integer(GgufType::Uint32, v); }
  static GgufValue of_int32(int32_t v) { return integer(GgufType::Int32, v); }
  static GgufValue of_uint64(uint64_t v) {
    return integer(GgufType::Uint64, static_cast<int64_t>(v));
  }
  static GgufValue of_int64(int64_t v) { return integer(GgufType::Int64, v); }
  static GgufValue of_bool(bool v) { return integer(GgufType::Bool, v ? 1 : 0); }
  static GgufValue of_float32(float v);
  static GgufValue of_float64(double v);
  static GgufValue of_string(std::string v);
  // An array of `element_type`; every element must have that type.
  static GgufValue of_array(GgufType element_type, std::vector<GgufValue> elements);
  static GgufValue of_strings(const std::vector<std::string>& v);
  static GgufValue of_int32s(const std::vector<int32_t>& v);

  GgufType type() const { return type_; }
  bool is_integer() const;  // any integer type or bool
  bool is_float() const { return type_ == GgufType::Float32 || type_ == GgufType::Float64; }
  // Errors (naming `key`) when the value is not of a fitting type.
  int64_t as_int(const std::string& key) const;      // integers; a UINT64 past INT64_MAX fails
  uint64_t as_uint64(const std::string& key) const;  // non-negative integers
  double as_double(const std::string& key) const;    // integers and floats
  bool as_bool(const std::string& key) const;
  const std::string& as_string(const std::string& key) const;

  GgufType element_type() const { return element_type_; }  // arrays
  const std::vector<GgufValue>& elements() const { return elements_; }
  std::vector<std::string> as_strings(const std::string& key) const;  // array of strings
  std::vector<int64_t> as_ints(const std::string& key) const;         // array of integers
  std::vector<double> as_doubles(const std::string& key) const;       // array of numbers

 private:
  static GgufValue integer(GgufType t, int64_t v) {
    GgufValue g;
    g.type_ = t;
    g.integer_ = v;
    return g;
  }
  GgufType type_ = GgufType::Uint32;
  int64_t integer_ = 0;
  double real_ = 0.0;
  std::string text_;
  GgufType element_type_ = GgufType::Uint8;
  std::vector<GgufValue> elements_;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::F32;
  uint32_t ggml_type = 0;  // as stored
  Shape shape;             // torch order (ne reversed)
  uint64_t offset = 0;     // within the data section
  uint64_t nbytes = 0;
};

struct GgufHeader {
  uint32_t version = 3;
  std::vector<std::pair<std::string, GgufValue>> metadata;  // in file order
  std::vector<GgufTensorInfo> tensors;                      // in file order
  uint64_t alignment = 32;
  uint64_t data_start = 0;  // absolute byte offset of the data section

  const GgufValue* find(const std::string& key) const;  // nullptr if absent
};

inline constexpr uint64_t kGgufDefaultAlignment = 32;

// The zflow dtype of a GGML type id, or nullopt for types zflow does not read (IQ*, TQ*,
// Q8_1, Q8_K, MXFP4, ...). ggml_type_name names any id gguf-py knows.
std::optional<DType> dtype_from_ggml_type(uint32_t ggml_type);
std::optional<uint32_t> ggml_type_from_dtype(DType dtype);
std::string ggml_type_name(uint32_t ggml_type);

// Whether `bytes` start with the GGUF magic.
bool is_gguf(std::span<const uint8_t> bytes);

// Parses and validates the header of a file of `file_size` bytes whose first bytes are
// `prefix` (all of the file, or at least the header). `source` names the file in errors.
// Checks: magic, version 2 or 3, counts against the bytes left, every string's length,
// value types, array element counts, nesting depth, duplicate keys and tensor names,
// general.alignment (a power of two), dims (at most 4, the innermost a whole number of
// blocks, no overflow), known tensor types, offsets aligned, each tensor inside the data
// section, and no two tensors overlapping. Exposed for the fuzz target and tests.
GgufHeader parse_gguf_header(std::span<const uint8_t> prefix, uint64_t file_size,
                             const std::string& source);

// The tensor `info` of a parsed header over `storage` (the whole file's bytes): a
// zero-copy view in its stored dtype, or a copy when plain elements would sit below their
// natural alignment (a file whose general.alignment is smaller than the element size).
Tensor gguf_tensor(const std::shared_ptr<Storage>& storage, const GgufHeader& header,
                   const GgufTensorInfo& info);

class GgufFile {
 public:
  static GgufFile open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const GgufHeader& header() const { return header_; }
  const std::vector<GgufTensorInfo>& tensors() const { return header_.tensors; }
  const GgufValue* find_metadata(const std::string& key) const { return header_.find(key); }
  const GgufTensorInfo* find(const std::string& name) const;  // nullptr if absent
  // general.architecture, or "" when absent (stable-diffusion.cpp files have none).
  std::string architecture() const;
  // A zero-copy tensor over the mapping in its stored dtype (block types included).
  Tensor tensor(const std::string& name) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<MappedFile> file_;
  std::shared_ptr<Storage> storage_;
  GgufHeader header_;
  std::map<std::string, size_t> index_;
};

// One tensor of a GGUF file being written: its name, shape and dtype, which the header needs
// first, and a function that makes its data when the writer reaches it.
struct GgufTensorSource {
  std::string name;
  Shape shape;
  DType dtype;
  std::function<Tensor()> make;  // a host tensor of exactly that shape and dtype
};

// write_gguf with each tensor made as it is written and released after: the memory of one
// tensor at a time, whatever the file's size (`zflow convert`). A made tensor that does not
// match its entry, or a make that throws, stops the write and leaves no file.
void write_gguf_streamed(const std::filesystem::path& path,
                         const std::vector<std::pair<std::string, GgufValue>>& metadata,
                         const std::vector<GgufTensorSource>& tensors,
                         uint64_t alignment = kGgufDefaultAlignment);

// Writes a GGUF version 3 file: metadata in the order given (general.alignment is added
// when `alignment` is not the default and the key is absent), then the tensors (host tensors
// of a GGML-representable dtype, made contiguous) in the order given, each aligned. Writes a
// temporary file beside `path` and renames it into place.
void write_gguf(const std::filesystem::path& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<std::pair<std::string, Tensor>>& tensors,
                uint64_t alignment = kGgufDefaultAlignment);

}  // namespace zflow::io
