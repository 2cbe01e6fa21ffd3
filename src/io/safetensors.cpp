#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/error.h"
#include "io/mapped_file.h"

namespace zflow::io {

namespace {

using nlohmann::json;

// A string from the file, shortened for an error message: a hostile header may hold a
// 100 MB tensor name or dtype.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 120;
  if (s.size() <= kMax) return std::string(s);
  return fmt::format("{}... ({} bytes)", s.substr(0, kMax), s.size());
}

// Index of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing past U+10FFFF), or npos.
size_t first_invalid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    size_t len = 0;
    uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return i;
    for (size_t k = 2; k < len; ++k)
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string supported_dtypes() {
  std::string out;
  for (int t = 0; t <= static_cast<int>(DType::Bool); ++t) {
    if (!out.empty()) out += ", ";
    out += dtype_name(static_cast<DType>(t));
  }
  return out;
}

// Parses the header JSON, rejecting duplicate keys (nlohmann keeps the last silently;
// a duplicate tensor name is a lying file) and nesting deeper than a valid header
// needs (object > tensor object > shape array), so a hostile header cannot make any
// later recursive walk run out of stack.
json parse_header_json(std::string_view text, const std::string& source) {
  constexpr int kMaxContainerDepth = 2;     // depth of the shape / data_offsets arrays
  std::vector<std::set<std::string>> keys;  // one set per open object
  std::string top_key;                      // the tensor being parsed, for messages
  auto callback = [&](int depth, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (depth > kMaxContainerDepth)
          fail(
              "[safetensors] {}: header nests objects or arrays deeper than a safetensors "
              "header can (under '{}')",
              source, excerpt(top_key));
        if (event == json::parse_event_t::object_start) keys.emplace_back();
        break;
      case json::parse_event_t::object_end:
        keys.pop_back();
        break;
      case json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (depth == 1) top_key = key;
        if (!keys.back().insert(key).second) {
          if (depth == 1)
            fail("[safetensors] {}: tensor '{}' appears twice in the header", source, excerpt(key));
          fail("[safetensors] {}: key '{}' appears twice in the entry '{}'", source, excerpt(key),
               excerpt(top_key));
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {
    fail("[safetensors] {}: header is not valid JSON: {}", source, e.what());
  }
}

// A non-negative JSON integer that fits in int64 (shape dims and offsets alike).
uint64_t json_count(const json& v, const std::string& source, const std::string& name,
                    const char* field) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("[safetensors] {}: tensor '{}': {} value {} is too large", source, excerpt(name), field,
           u);
    return u;
  }
  if (v.is_number_integer()) {
    const auto i = v.get<int64_t>();
    if (i < 0)
      fail("[safetensors] {}: tensor '{}': {} value {} is negative", source, excerpt(name), field,
           i);
    return static_cast<uint64_t>(i);
  }
  fail("[safetensors] {}: tensor '{}': {} holds {} {}, expected a non-negative integer", source,
       excerpt(name), field, v.type_name(), excerpt(v.dump()));
}

TensorInfo parse_tensor_info(const std::string& name, const json& entry, uint64_t data_size,
                             const std::string& source) {
  const std::string who = excerpt(name);
  if (!entry.is_object())
    fail(
        "[safetensors] {}: tensor '{}' is {} in the header, expected an object with dtype, "
        "shape and data_offsets",
        source, who, entry.type_name());
  auto field = [&](const char* key) -> const json& {
    auto it = entry.find(key);
    if (it == entry.end()) fail("[safetensors] {}: tensor '{}' has no '{}'", source, who, key);
    return *it;
  };

  TensorInfo info;
  info.name = name;

  const json& dtype = field("dtype");
  if (!dtype.is_string())
    fail("[safetensors] {}: tensor '{}': dtype is {}, expected a string", source, who,
         dtype.type_name());
  const auto& dtype_text = dtype.get_ref<const std::string&>();
  const auto parsed_dtype = dtype_from_name(dtype_text);
  // GGML's block types (Q8_0, ...) are zflow dtypes but not safetensors ones.
  if (!parsed_dtype || dtype_is_quantized(*parsed_dtype))
    fail(
        "[safetensors] {}: tensor '{}' has dtype '{}', which zflow does not support "
        "(supported: {})",
        source, who, excerpt(dtype_text), supported_dtypes());
  info.dtype = *parsed_dtype;

  // numel, checked against int64 overflow at every step (Tensor counts in int64). The product
  // of the non-zero dims must fit too: a tensor's strides are those products even when a zero
  // dim makes it empty. (The Rust crate accepts [0, 2^62, 2^62]; zflow refuses it rather than
  // build overflowing strides.)
  const json& shape = field("shape");
  if (!shape.is_array())
    fail("[safetensors] {}: tensor '{}': shape is {}, expected an array", source, who,
         shape.type_name());
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t numel = 1, strides = 1;
  bool overflow = false;
  info.shape.reserve(shape.size());
  for (const json& d : shape) {
    const uint64_t dim = json_count(d, source, name, "shape");
    info.shape.push_back(static_cast<int64_t>(dim));
    overflow = overflow || __builtin_mul_overflow(numel, dim, &numel) || numel > kMax ||
               __builtin_mul_overflow(strides, std::max<uint64_t>(dim, 1), &strides) ||
               strides > kMax;
  }
  uint64_t nbytes = 0;
  if (overflow || __builtin_mul_overflow(numel, dtype_size(info.dtype), &nbytes))
    fail("[safetensors] {}: tensor '{}': shape {} has more elements than fit in 64 bits", source,
         who, excerpt(shape.dump()));

  const json& offsets = field("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2)
    fail("[safetensors] {}: tensor '{}': data_offsets is {}, expected [begin, end]", source, who,
         excerpt(offsets.dump()));
  info.begin = json_count(offsets[0], source, name, "data_offsets");
  info.end = json_count(offsets[1], source, name, "data_offsets");
  if (info.begin > info.end)
    fail("[safetensors] {}: tensor '{}': data_offsets [{}, {}] end before they begin", source, who,
         info.begin, info.end);
  if (info.end > data_size)
    fail(
        "[safetensors] {}: tensor '{}' ends at byte {} of the data section, past its end at {} "
        "(the file is truncated or its header is wrong)",
        source, who, info.end, data_size);
  if (info.end - info.begin != nbytes)
    fail(
        "[safetensors] {}: tensor '{}' is {} {} ({} bytes), but its data_offsets [{}, {}] span "
        "{} bytes",
        source, who, dtype_name(info.dtype), shape_str(info.shape), nbytes, info.begin, info.end,
        info.end - info.begin);
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& entry, const std::string& source) {
  if (!entry.is_object())
    fail("[safetensors] {}: __metadata__ is {}, expected an object of strings", source,
         entry.type_name());
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : entry.items()) {
    if (!value.is_string())
      fail("[safetensors] {}: __metadata__ '{}' is {}, expected a string", source, excerpt(key),
           value.type_name());
    out.emplace(key, value.get<std::string>());
  }
  return out;
}

// Sorted by offset, the tensors must tile [0, data_size) exactly: the reference crate
// rejects overlaps, gaps and trailing bytes alike, and so do we.
void check_coverage(const std::vector<TensorInfo>& tensors, uint64_t data_size,
                    const std::string& source) {
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    if (t.begin < covered)
      fail("[safetensors] {}: tensor '{}' at bytes [{}, {}) overlaps tensor '{}' at [{}, {})",
           source, excerpt(t.name), t.begin, t.end, excerpt(previous->name), previous->begin,
           previous->end);
    if (t.begin > covered)
      fail(
          "[safetensors] {}: {} unused bytes [{}, {}) in the data section before tensor '{}'; "
          "safetensors requires tensors to cover it with no gaps",
          source, t.begin - covered, covered, t.begin, excerpt(t.name));
    covered = t.end;
    previous = &t;
  }
  if (covered != data_size) {
    if (previous == nullptr)
      fail("[safetensors] {}: the header lists no tensors but {} data bytes follow it", source,
           data_size);
    fail(
        "[safetensors] {}: {} bytes follow the last tensor '{}' (which ends at data byte {}); "
        "safetensors requires the file to end with the last tensor",
        source, data_size - covered, excerpt(previous->name), covered);
  }
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> prefix, uint64_t file_size,
                                           const std::string& source) {
  if (file_size < 8)
    fail("[safetensors] {}: the file is {} bytes, too short to hold the 8-byte header length",
         source, file_size);
  ZF_CHECK(prefix.size() >= 8 && prefix.size() <= file_size,
           "[safetensors] {}: {} prefix bytes given for a file of {} bytes", source, prefix.size(),
           file_size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | prefix[i];  // little-endian
  if (n < 2)
    fail(
        "[safetensors] {}: header length {} is too small (the smallest header, '{{}}', is 2 "
        "bytes)",
        source, n);
  if (n > kMaxSafetensorsHeaderBytes)
    fail("[safetensors] {}: header length {} is over the {} byte limit (not a safetensors file?)",
         source, n, kMaxSafetensorsHeaderBytes);
  if (n > file_size - 8)
    fail(
        "[safetensors] {}: header length {} runs past the end of the file ({} bytes); the file "
        "is truncated",
        source, n, file_size);
  ZF_CHECK(prefix.size() >= 8 + n, "[safetensors] {}: {} prefix bytes given, the header needs {}",
           source, prefix.size(), 8 + n);

  const std::string_view text(reinterpret_cast<const char*>(prefix.data()) + 8, n);
  if (const size_t bad = first_invalid_utf8(text); bad != std::string_view::npos)
    fail("[safetensors] {}: header is not valid UTF-8 (byte {} of the header is 0x{:02x})", source,
         bad, static_cast<uint8_t>(text[bad]));
  if (text.front() != '{')
    fail("[safetensors] {}: header does not start with '{{' (not a safetensors file?)", source);
  const json header = parse_header_json(text, source);
  if (!header.is_object())
    fail("[safetensors] {}: header is {}, expected a JSON object", source, header.type_name());

  SafetensorsHeader out;
  out.data_start = 8 + n;
  const uint64_t data_size = file_size - out.data_start;
  out.tensors.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__")
      out.metadata = parse_metadata(value, source);
    else
      out.tensors.push_back(parse_tensor_info(key, value, data_size, source));
  }
  std::sort(out.tensors.begin(), out.tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  check_coverage(out.tensors, data_size, source);
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::filesystem::path& path) {
  SafetensorsFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path);
  f.header_ = parse_safetensors_header(f.file_->bytes(), f.file_->size(), path.string());
  // The storage owns a reference to the mapping: tensors outlive this reader safely.
  f.storage_ = Storage::borrow(const_cast<uint8_t*>(f.file_->data()), f.file_->size(), f.file_);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i)
    f.index_.emplace(f.header_.tensors[i].name, i);
  return f;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr)
    fail("[safetensors] {}: no tensor '{}' among its {} tensors", path_.string(), name,
         header_.tensors.size());
  const size_t offset = header_.data_start + info->begin;
  // Offsets in the format are byte-granular; a tensor misaligned for its element type
  // (e.g. after an odd-sized U8 tensor) is copied rather than read through a bad pointer.
  const auto address = reinterpret_cast<uintptr_t>(file_->data()) + offset;
  if (address % dtype_size(info->dtype) == 0)
    return Tensor::over(storage_, offset, info->shape, info->dtype);
  Tensor copy = Tensor::empty(info->shape, info->dtype);
  std::memcpy(copy.raw(), file_->data() + offset, info->end - info->begin);
  return copy;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::vector<SafetensorsSource> sources;
  sources.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    // (An undefined tensor is refused when its turn comes.)
    sources.push_back({name, tensor.shape(), tensor.dtype(), [&t = tensor] { return t; }});
  }
  write_safetensors_streamed(path, sources, metadata);
}

void write_safetensors_streamed(const std::filesystem::path& path,
                                const std::vector<SafetensorsSource>& tensors,
                                const std::map<std::string, std::string>& metadata) {
  const std::string where = path.string();
  // ordered_json keeps keys in insertion order: __metadata__ first, then the tensors
  // in the order given, matching the order of their bytes.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const SafetensorsSource& t : tensors) {
    ZF_CHECK(t.name != "__metadata__", "[safetensors] {}: '__metadata__' is reserved", where);
    ZF_CHECK(!dtype_is_quantized(t.dtype),
             "[safetensors] {}: tensor '{}' is {}, a GGML block type safetensors cannot hold "
             "(write a GGUF file, or dequantise it)",
             where, t.name, dtype_name(t.dtype));
    ZF_CHECK(!header.contains(t.name), "[safetensors] {}: tensor '{}' is given twice", where,
             t.name);
    const uint64_t end = offset + dtype_nbytes(t.dtype, shape_numel(t.shape));
    header[t.name] = {
        {"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    fail("[safetensors] {}: cannot write the header (names and metadata must be UTF-8): {}", where,
         e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) fail("[safetensors] {}: cannot create: {}", where, std::strerror(errno));
  // Whatever stops the writing (a failed write, a tensor that cannot be made) removes the
  // temporary file.
  auto abandon = [&] {
    std::fclose(out);
    std::filesystem::remove(tmp);
  };
  uint8_t length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(uint64_t{text.size()} >> (8 * i));
  bool ok = std::fwrite(length, 1, 8, out) == 8 &&
            std::fwrite(text.data(), 1, text.size(), out) == text.size();
  for (size_t i = 0; ok && i < tensors.size(); ++i) {
    const SafetensorsSource& source = tensors[i];
    Tensor t;
    try {
      t = source.make();
      ZF_CHECK(t.defined(), "[safetensors] {}: tensor '{}' is undefined", where, source.name);
      ZF_CHECK(t.device() == Device::CPU, "[safetensors] {}: tensor '{}' is on {}, not the CPU",
               where, source.name, device_name(t.device()));
      ZF_CHECK(t.shape() == source.shape && t.dtype() == source.dtype,
               "[safetensors] {}: tensor '{}' was made as {} {}, not the {} {} announced", where,
               source.name, dtype_name(t.dtype()), shape_str(t.shape()), dtype_name(source.dtype),
               shape_str(source.shape));
      t = t.contiguous();
    } catch (...) {
      abandon();
      throw;
    }
    ok = t.nbytes() == 0 || std::fwrite(t.raw(), 1, t.nbytes(), out) == t.nbytes();
  }
  if (!ok) {
    abandon();
    fail("[safetensors] {}: write failed: {}", where, std::strerror(errno));
  }
  if (std::fclose(out) != 0) {
    std::filesystem::remove(tmp);
    fail("[safetensors] {}: write failed: {}", where, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail("[safetensors] {}: cannot rename the written file into place: {}", where, ec.message());
  }
}

}  // namespace zflow::io
