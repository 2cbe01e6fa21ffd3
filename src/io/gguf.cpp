#include "io/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <set>

#include <fmt/ranges.h>

#include "core/error.h"
#include "io/mapped_file.h"

namespace zflow::io {

namespace {

constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
constexpr uint32_t kMaxDims = 4;  // GGML_MAX_DIMS
// gguf-py writes arrays of arrays; ggml reads none. One level of nesting is all a file
// needs, and a bound keeps a hostile file from recursing deeply.
constexpr int kMaxArrayDepth = 2;

// A string from the file, shortened for an error message.
std::string excerpt(std::string_view s) {
  constexpr size_t kMax = 120;
  if (s.size() <= kMax) return std::string(s);
  return fmt::format("{}... ({} bytes)", s.substr(0, kMax), s.size());
}

// GGML type ids (ggml.h enum ggml_type; gguf-py GGMLQuantizationType).
struct GgmlType {
  uint32_t id;
  std::string_view name;
  std::optional<DType> dtype;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", DType::F32},    {1, "F16", DType::F16},    {2, "Q4_0", DType::Q4_0},
    {3, "Q4_1", DType::Q4_1},  {6, "Q5_0", DType::Q5_0},  {7, "Q5_1", DType::Q5_1},
    {8, "Q8_0", DType::Q8_0},  {9, "Q8_1", {}},           {10, "Q2_K", DType::Q2_K},
    {11, "Q3_K", DType::Q3_K}, {12, "Q4_K", DType::Q4_K}, {13, "Q5_K", DType::Q5_K},
    {14, "Q6_K", DType::Q6_K}, {15, "Q8_K", {}},          {16, "IQ2_XXS", {}},
    {17, "IQ2_XS", {}},        {18, "IQ3_XXS", {}},       {19, "IQ1_S", {}},
    {20, "IQ4_NL", {}},        {21, "IQ3_S", {}},         {22, "IQ2_S", {}},
    {23, "IQ4_XS", {}},        {24, "I8", DType::I8},     {25, "I16", DType::I16},
    {26, "I32", DType::I32},   {27, "I64", DType::I64},   {28, "F64", DType::F64},
    {29, "IQ1_M", {}},         {30, "BF16", DType::BF16}, {34, "TQ1_0", {}},
    {35, "TQ2_0", {}},         {39, "MXFP4", {}},         {40, "NVFP4", {}},
    {41, "Q1_0", {}},
};

const GgmlType* ggml_type(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

std::string readable_types() {
  std::string out;
  for (const GgmlType& t : kGgmlTypes)
    if (t.dtype) out += (out.empty() ? "" : ", ") + std::string(t.name);
  return out;
}

bool valid_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::Float64);
}

// Bytes the smallest value of a type takes in the file: bounds an array's element count
// by the bytes left before anything is allocated.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::Uint8:
    case GgufType::Int8:
    case GgufType::Bool:
      return 1;
    case GgufType::Uint16:
    case GgufType::Int16:
      return 2;
    case GgufType::Uint32:
    case GgufType::Int32:
    case GgufType::Float32:
      return 4;
    case GgufType::String:  // the length
    case GgufType::Uint64:
    case GgufType::Int64:
    case GgufType::Float64:
      return 8;
    case GgufType::Array:  // element type + count
      return 12;
  }
  return 1;
}

// Reads the header fields front to back; every read is bounds-checked and names what it
// was reading.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, uint64_t file_size, const std::string& source)
      : bytes_(bytes), file_size_(file_size), source_(source) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const uint64_t n = read<uint64_t>(what);
    if (n > left())
      fail("[gguf] {}: {} is {} bytes long, past the end of the file ({} bytes; truncated?)",
           source_, what, n, file_size_);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > left())
      fail("[gguf] {}: the file ends inside {} (at byte {} of {}; truncated?)", source_, what, pos_,
           file_size_);
  }

  const std::string& source() const { return source_; }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t file_size_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

GgufType read_type(Cursor& c, std::string_view what) {
  const uint32_t t = c.read<uint32_t>(what);
  if (!valid_type(t))
    fail("[gguf] {}: the value type of {} is {}, not a GGUF value type (0..12)", c.source(), what,
         t);
  return static_cast<GgufType>(t);
}

// `label` is "key '<key>'", built once per key rather than once per array element.
GgufValue read_value(Cursor& c, GgufType type, const std::string& label, int depth) {
  switch (type) {
    case GgufType::Uint8:
      return GgufValue::of_uint8(c.read<uint8_t>(label));
    case GgufType::Int8:
      return GgufValue::of_int8(c.read<int8_t>(label));
    case GgufType::Uint16:
      return GgufValue::of_uint16(c.read<uint16_t>(label));
    case GgufType::Int16:
      return GgufValue::of_int16(c.read<int16_t>(label));
    case GgufType::Uint32:
      return GgufValue::of_uint32(c.read<uint32_t>(label));
    case GgufType::Int32:
      return GgufValue::of_int32(c.read<int32_t>(label));
    case GgufType::Uint64:
      return GgufValue::of_uint64(c.read<uint64_t>(label));
    case GgufType::Int64:
      return GgufValue::of_int64(c.read<int64_t>(label));
    case GgufType::Float32:
      return GgufValue::of_float32(c.read<float>(label));
    case GgufType::Float64:
      return GgufValue::of_float64(c.read<double>(label));
    case GgufType::Bool: {
      const uint8_t b = c.read<uint8_t>(label);
      if (b > 1)
        fail("[gguf] {}: {} is a bool stored as {}, expected 0 or 1", c.source(), label, b);
      return GgufValue::of_bool(b != 0);
    }
    case GgufType::String:
      return GgufValue::of_string(c.read_string(label));
    case GgufType::Array: {
      if (depth >= kMaxArrayDepth)
        fail("[gguf] {}: {} nests arrays more than {} deep", c.source(), label, kMaxArrayDepth);
      const GgufType element = read_type(c, label);
      const uint64_t count = c.read<uint64_t>(label);
      if (count > c.left() / min_encoded_size(element))
        fail(
            "[gguf] {}: {} claims an array of {} {} values, more than the {} bytes left in the "
            "file can hold",
            c.source(), label, count, gguf_type_name(element), c.left());
      std::vector<GgufValue> elements;
      elements.reserve(count);
      for (uint64_t i = 0; i < count; ++i)
        elements.push_back(read_value(c, element, label, depth + 1));
      return GgufValue::of_array(element, std::move(elements));
    }
  }
  fail("[gguf] {}: {} has an unknown type", c.source(), label);
}

uint64_t align_up(uint64_t x, uint64_t alignment) {
  return (x + alignment - 1) / alignment * alignment;
}

uint64_t read_alignment(const GgufHeader& h, const std::string& source) {
  const GgufValue* v = h.find("general.alignment");
  if (v == nullptr) return kGgufDefaultAlignment;
  if (!v->is_integer() || v->type() == GgufType::Bool)
    fail("[gguf] {}: general.alignment is {}, expected an unsigned integer", source,
         gguf_type_name(v->type()));
  const uint64_t a = v->as_uint64("general.alignment");
  if (a == 0 || !std::has_single_bit(a) || a > (uint64_t{1} << 30))
    fail("[gguf] {}: general.alignment is {}, expected a power of two (at most 2^30)", source, a);
  return a;
}

GgufTensorInfo read_tensor_info(Cursor& c, uint64_t index) {
  GgufTensorInfo t;
  t.name = c.read_string(fmt::format("the name of tensor {}", index));
  const std::string who = "tensor '" + excerpt(t.name) + "'";
  const uint32_t n_dims = c.read<uint32_t>("the dim count of " + who);
  if (n_dims > kMaxDims)
    fail("[gguf] {}: {} has {} dims, more than GGUF's {}", c.source(), who, n_dims, kMaxDims);
  std::vector<uint64_t> ne(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) ne[d] = c.read<uint64_t>("the shape of " + who);
  t.ggml_type = c.read<uint32_t>("the type of " + who);
  t.offset = c.read<uint64_t>("the data offset of " + who);

  const GgmlType* type = ggml_type(t.ggml_type);
  if (type == nullptr)
    fail("[gguf] {}: {} has GGML type {}, which is not a known type (zflow reads {})", c.source(),
         who, t.ggml_type, readable_types());
  if (!type->dtype)
    fail("[gguf] {}: {} is {}, a type zflow does not read (it reads {})", c.source(), who,
         type->name, readable_types());
  t.dtype = *type->dtype;

  // The product of the non-zero dims must fit too: a tensor's strides are those products,
  // even when a zero dim makes it empty.
  uint64_t numel = 1, strides = 1;
  bool overflow = false;
  for (uint32_t d = n_dims; d-- > 0;) {
    constexpr auto kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    overflow = overflow || ne[d] > kMax || __builtin_mul_overflow(numel, ne[d], &numel) ||
               __builtin_mul_overflow(strides, std::max<uint64_t>(ne[d], 1), &strides) ||
               strides > kMax;
    t.shape.push_back(static_cast<int64_t>(ne[d]));
  }
  if (overflow)
    fail("[gguf] {}: {} has shape {} (ne, innermost first), more elements than fit in 64 bits",
         c.source(), who, fmt::format("{}", fmt::join(ne, ", ")));
  const int64_t block = dtype_block_size(t.dtype);
  const uint64_t ne0 = n_dims == 0 ? 1 : ne[0];
  if (ne0 % block != 0)
    fail("[gguf] {}: {} is {} with rows of {} values, not a whole number of {}-value blocks",
         c.source(), who, type->name, ne0, block);
  const uint64_t blocks = numel / block;
  if (__builtin_mul_overflow(blocks, dtype_block_bytes(t.dtype), &t.nbytes))
    fail("[gguf] {}: {} is too large ({} values of {})", c.source(), who, numel, type->name);
  return t;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  constexpr std::string_view kNames[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                         "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                         "UINT64", "INT64",   "FLOAT64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

// --- GgufValue ---------------------------------------------------------------------------

GgufValue GgufValue::of_float32(float v) {
  GgufValue g;
  g.type_ = GgufType::Float32;
  g.real_ = v;
  return g;
}
GgufValue GgufValue::of_float64(double v) {
  GgufValue g;
  g.type_ = GgufType::Float64;
  g.real_ = v;
  return g;
}
GgufValue GgufValue::of_string(std::string v) {
  GgufValue g;
  g.type_ = GgufType::String;
  g.text_ = std::move(v);
  return g;
}
GgufValue GgufValue::of_array(GgufType element_type, std::vector<GgufValue> elements) {
  for (const GgufValue& e : elements)
    ZF_CHECK(e.type() == element_type, "[gguf] an array of {} holds a {}",
             gguf_type_name(element_type), gguf_type_name(e.type()));
  GgufValue g;
  g.type_ = GgufType::Array;
  g.element_type_ = element_type;
  g.elements_ = std::move(elements);
  return g;
}
GgufValue GgufValue::of_strings(const std::vector<std::string>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (const auto& s : v) e.push_back(of_string(s));
  return of_array(GgufType::String, std::move(e));
}
GgufValue GgufValue::of_int32s(const std::vector<int32_t>& v) {
  std::vector<GgufValue> e;
  e.reserve(v.size());
  for (int32_t x : v) e.push_back(of_int32(x));
  return of_array(GgufType::Int32, std::move(e));
}

bool GgufValue::is_integer() const {
  switch (type_) {
    case GgufType::Uint8:
    case GgufType::Int8:
    case GgufType::Uint16:
    case GgufType::Int16:
    case GgufType::Uint32:
    case GgufType::Int32:
    case GgufType::Uint64:
    case GgufType::Int64:
    case GgufType::Bool:
      return true;
    default:
      return false;
  }
}

int64_t GgufValue::as_int(const std::string& key) const {
  ZF_CHECK(is_integer(), "[gguf] key '{}' is {}, expected an integer", key, gguf_type_name(type_));
  ZF_CHECK(type_ != GgufType::Uint64 || integer_ >= 0,
           "[gguf] key '{}' is {}, past the int64 range", key, static_cast<uint64_t>(integer_));
  return integer_;
}
uint64_t GgufValue::as_uint64(const std::string& key) const {
  ZF_CHECK(is_integer(), "[gguf] key '{}' is {}, expected an integer", key, gguf_type_name(type_));
  if (type_ == GgufType::Uint64) return static_cast<uint64_t>(integer_);
  ZF_CHECK(integer_ >= 0, "[gguf] key '{}' is {}, expected a non-negative integer", key, integer_);
  return static_cast<uint64_t>(integer_);
}
double GgufValue::as_double(const std::string& key) const {
  if (is_float()) return real_;
  if (type_ == GgufType::Uint64) return static_cast<double>(static_cast<uint64_t>(integer_));
  ZF_CHECK(is_integer(), "[gguf] key '{}' is {}, expected a number", key, gguf_type_name(type_));
  return static_cast<double>(integer_);
}
bool GgufValue::as_bool(const std::string& key) const {
  ZF_CHECK(type_ == GgufType::Bool, "[gguf] key '{}' is {}, expected BOOL", key,
           gguf_type_name(type_));
  return integer_ != 0;
}
const std::string& GgufValue::as_string(const std::string& key) const {
  ZF_CHECK(type_ == GgufType::String, "[gguf] key '{}' is {}, expected STRING", key,
           gguf_type_name(type_));
  return text_;
}
std::vector<std::string> GgufValue::as_strings(const std::string& key) const {
  ZF_CHECK(type_ == GgufType::Array && element_type_ == GgufType::String,
           "[gguf] key '{}' is {}, expected an array of strings", key, gguf_type_name(type_));
  std::vector<std::string> out;
  out.reserve(elements_.size());
  for (const GgufValue& e : elements_) out.push_back(e.text_);
  return out;
}
std::vector<int64_t> GgufValue::as_ints(const std::string& key) const {
  ZF_CHECK(type_ == GgufType::Array, "[gguf] key '{}' is {}, expected an array of integers", key,
           gguf_type_name(type_));
  std::vector<int64_t> out;
  out.reserve(elements_.size());
  for (const GgufValue& e : elements_) out.push_back(e.as_int(key));
  return out;
}
std::vector<double> GgufValue::as_doubles(const std::string& key) const {
  ZF_CHECK(type_ == GgufType::Array, "[gguf] key '{}' is {}, expected an array of numbers", key,
           gguf_type_name(type_));
  std::vector<double> out;
  out.reserve(elements_.size());
  for (const GgufValue& e : elements_) out.push_back(e.as_double(key));
  return out;
}

const GgufValue* GgufHeader::find(const std::string& key) const {
  for (const auto& [k, v] : metadata)
    if (k == key) return &v;
  return nullptr;
}

std::optional<DType> dtype_from_ggml_type(uint32_t id) {
  const GgmlType* t = ggml_type(id);
  return t == nullptr ? std::nullopt : t->dtype;
}

std::optional<uint32_t> ggml_type_from_dtype(DType dtype) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.dtype == dtype) return t.id;
  return std::nullopt;
}

std::string ggml_type_name(uint32_t id) {
  const GgmlType* t = ggml_type(id);
  return t == nullptr ? fmt::format("type {}", id) : std::string(t->name);
}

bool is_gguf(std::span<const uint8_t> bytes) {
  return bytes.size() >= 4 && std::memcmp(bytes.data(), kMagic, 4) == 0;
}

// --- parsing -----------------------------------------------------------------------------

GgufHeader parse_gguf_header(std::span<const uint8_t> prefix, uint64_t file_size,
                             const std::string& source) {
  ZF_CHECK(prefix.size() <= file_size, "[gguf] {}: {} prefix bytes given for a file of {} bytes",
           source, prefix.size(), file_size);
  if (!is_gguf(prefix))
    fail("[gguf] {}: does not start with the GGUF magic (not a GGUF file?)", source);
  Cursor c(prefix, file_size, source);
  c.read<uint32_t>("the magic");
  GgufHeader h;
  h.version = c.read<uint32_t>("the version");
  if (h.version != 2 && h.version != 3) {
    if (h.version != 0 && (h.version & 0xFFFF) == 0)
      fail("[gguf] {}: version field {:#x} looks byte-swapped: big-endian GGUF is not supported",
           source, h.version);
    fail("[gguf] {}: GGUF version {}, zflow reads versions 2 and 3", source, h.version);
  }
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // A key is at least 8 + 4 bytes, a tensor info at least 8 + 4 + 4 + 8.
  if (n_kv > c.left() / 12)
    fail("[gguf] {}: {} metadata entries claimed, more than the file can hold", source, n_kv);
  if (n_tensors > c.left() / 24)
    fail("[gguf] {}: {} tensors claimed, more than the file can hold", source, n_tensors);

  std::set<std::string> keys;
  h.metadata.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.read_string(fmt::format("metadata key {}", i));
    const std::string shown = excerpt(key);
    const std::string label = "key '" + shown + "'";
    const GgufType type = read_type(c, label);
    GgufValue value = read_value(c, type, label, 0);
    if (!keys.insert(key).second) fail("[gguf] {}: metadata key '{}' appears twice", source, shown);
    h.metadata.emplace_back(std::move(key), std::move(value));
  }
  h.alignment = read_alignment(h, source);

  std::set<std::string> names;
  h.tensors.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t = read_tensor_info(c, i);
    if (!names.insert(t.name).second)
      fail("[gguf] {}: tensor '{}' appears twice", source, excerpt(t.name));
    h.tensors.push_back(std::move(t));
  }

  h.data_start = align_up(c.pos(), h.alignment);
  const uint64_t data_size = h.data_start <= file_size ? file_size - h.data_start : 0;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : h.tensors) {
    if (t.offset % h.alignment != 0)
      fail("[gguf] {}: tensor '{}' starts at data offset {}, not a multiple of the alignment {}",
           source, excerpt(t.name), t.offset, h.alignment);
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      fail(
          "[gguf] {}: tensor '{}' ({} {}, {} bytes at data offset {}) ends past the end of the "
          "data section ({} bytes from byte {}); the file is truncated or its header is wrong",
          source, excerpt(t.name), dtype_name(t.dtype), shape_str(t.shape), t.nbytes, t.offset,
          data_size, h.data_start);
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (b.offset < a.offset + a.nbytes)
      fail("[gguf] {}: tensor '{}' at data bytes [{}, {}) overlaps tensor '{}' at [{}, {})", source,
           excerpt(b.name), b.offset, b.offset + b.nbytes, excerpt(a.name), a.offset,
           a.offset + a.nbytes);
  }
  return h;
}

// --- GgufFile ----------------------------------------------------------------------------

GgufFile GgufFile::open(const std::filesystem::path& path) {
  GgufFile f;
  f.path_ = path;
  f.file_ = MappedFile::open(path, AccessPattern::Random);
  f.header_ = parse_gguf_header(f.file_->bytes(), f.file_->size(), path.string());
  f.storage_ = Storage::borrow(const_cast<uint8_t*>(f.file_->data()), f.file_->size(), f.file_);
  for (size_t i = 0; i < f.header_.tensors.size(); ++i)
    f.index_.emplace(f.header_.tensors[i].name, i);
  return f;
}

const GgufTensorInfo* GgufFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

std::string GgufFile::architecture() const {
  const GgufValue* v = find_metadata("general.architecture");
  return v == nullptr ? std::string() : v->as_string("general.architecture");
}

Tensor gguf_tensor(const std::shared_ptr<Storage>& storage, const GgufHeader& header,
                   const GgufTensorInfo& info) {
  const size_t offset = header.data_start + info.offset;
  // Blocks are read bytewise; plain elements need their natural alignment.
  const size_t align = dtype_is_quantized(info.dtype) ? 1 : dtype_size(info.dtype);
  const auto* bytes = static_cast<const uint8_t*>(storage->data) + offset;
  if (reinterpret_cast<uintptr_t>(bytes) % align == 0)
    return Tensor::over(storage, offset, info.shape, info.dtype);
  Tensor copy = Tensor::empty(info.shape, info.dtype);
  std::memcpy(copy.raw(), bytes, info.nbytes);
  return copy;
}

Tensor GgufFile::tensor(const std::string& name) const {
  const GgufTensorInfo* info = find(name);
  if (info == nullptr)
    fail("[gguf] {}: no tensor '{}' among its {} tensors", path_.string(), name,
         header_.tensors.size());
  return gguf_tensor(storage_, header_, *info);
}

// --- writing -----------------------------------------------------------------------------

namespace {

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out_.append(b, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.append(s);
  }
  void put_value(const GgufValue& v, const std::string& key) {
    switch (v.type()) {
      case GgufType::Uint8:
        return put<uint8_t>(static_cast<uint8_t>(v.as_uint64(key)));
      case GgufType::Int8:
        return put<int8_t>(static_cast<int8_t>(v.as_int(key)));
      case GgufType::Uint16:
        return put<uint16_t>(static_cast<uint16_t>(v.as_uint64(key)));
      case GgufType::Int16:
        return put<int16_t>(static_cast<int16_t>(v.as_int(key)));
      case GgufType::Uint32:
        return put<uint32_t>(static_cast<uint32_t>(v.as_uint64(key)));
      case GgufType::Int32:
        return put<int32_t>(static_cast<int32_t>(v.as_int(key)));
      case GgufType::Uint64:
        return put<uint64_t>(v.as_uint64(key));
      case GgufType::Int64:
        return put<int64_t>(v.as_int(key));
      case GgufType::Float32:
        return put<float>(static_cast<float>(v.as_double(key)));
      case GgufType::Float64:
        return put<double>(v.as_double(key));
      case GgufType::Bool:
        return put<uint8_t>(v.as_bool(key) ? 1 : 0);
      case GgufType::String:
        return put_string(v.as_string(key));
      case GgufType::Array:
        put<uint32_t>(static_cast<uint32_t>(v.element_type()));
        put<uint64_t>(v.elements().size());
        for (const GgufValue& e : v.elements()) put_value(e, key);
        return;
    }
  }
  void pad_to(uint64_t alignment) {
    out_.append(align_up(out_.size(), alignment) - out_.size(), '\0');
  }

 private:
  std::string& out_;
};

}  // namespace

void write_gguf_streamed(const std::filesystem::path& path,
                         const std::vector<std::pair<std::string, GgufValue>>& metadata,
                         const std::vector<GgufTensorSource>& tensors, uint64_t alignment) {
  const std::string where = path.string();
  ZF_CHECK(alignment > 0 && std::has_single_bit(alignment),
           "[gguf] {}: alignment {} is not a power of two", where, alignment);
  std::vector<std::pair<std::string, GgufValue>> kv = metadata;
  std::set<std::string> keys;
  for (const auto& [key, value] : kv) {
    ZF_CHECK(keys.insert(key).second, "[gguf] {}: metadata key '{}' is given twice", where, key);
    if (key == "general.alignment")
      ZF_CHECK(value.is_integer() && value.as_uint64(key) == alignment,
               "[gguf] {}: general.alignment in the metadata disagrees with alignment {}", where,
               alignment);
  }
  if (alignment != kGgufDefaultAlignment && !keys.count("general.alignment"))
    kv.emplace_back("general.alignment", GgufValue::of_uint32(static_cast<uint32_t>(alignment)));

  std::string header;
  Writer w(header);
  header.append(reinterpret_cast<const char*>(kMagic), 4);
  w.put<uint32_t>(3);
  w.put<uint64_t>(tensors.size());
  w.put<uint64_t>(kv.size());
  for (const auto& [key, value] : kv) {
    w.put_string(key);
    w.put<uint32_t>(static_cast<uint32_t>(value.type()));
    w.put_value(value, key);
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const GgufTensorSource& t : tensors) {
    ZF_CHECK(names.insert(t.name).second, "[gguf] {}: tensor '{}' is given twice", where, t.name);
    ZF_CHECK(t.shape.size() <= kMaxDims,
             "[gguf] {}: tensor '{}' has {} dims; GGUF holds at most {}", where, t.name,
             t.shape.size(), kMaxDims);
    const auto type = ggml_type_from_dtype(t.dtype);
    ZF_CHECK(type.has_value(), "[gguf] {}: tensor '{}' is {}, which GGUF has no type for", where,
             t.name, dtype_name(t.dtype));
    w.put_string(t.name);
    w.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
    for (size_t d = t.shape.size(); d-- > 0;) w.put<uint64_t>(static_cast<uint64_t>(t.shape[d]));
    w.put<uint32_t>(*type);
    w.put<uint64_t>(offset);
    offset = align_up(offset + dtype_nbytes(t.dtype, shape_numel(t.shape)), alignment);
  }
  w.pad_to(alignment);

  std::filesystem::path tmp = path;
  tmp += ".tmp";
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) fail("[gguf] {}: cannot create: {}", where, std::strerror(errno));
  // Whatever stops the write (a failed make, a full disk) leaves no partial file behind.
  auto abandon = [&] {
    std::fclose(out);
    std::filesystem::remove(tmp);
  };
  bool ok = std::fwrite(header.data(), 1, header.size(), out) == header.size();
  static const char kZeros[64] = {};
  for (const GgufTensorSource& source : tensors) {
    if (!ok) break;
    Tensor t;
    try {
      t = source.make();
      ZF_CHECK(t.defined() && t.device() == Device::CPU && t.dtype() == source.dtype &&
                   t.shape() == source.shape,
               "[gguf] {}: tensor '{}' was made as {} {} on {}, not the {} {} its header "
               "entry says",
               where, source.name, t.defined() ? dtype_name(t.dtype()) : "undefined",
               t.defined() ? fmt::format("{}", t.shape()) : "", device_name(t.device()),
               dtype_name(source.dtype), fmt::format("{}", source.shape));
      t = t.contiguous();
    } catch (...) {
      abandon();
      throw;
    }
    const size_t n = t.nbytes();
    ok = n == 0 || std::fwrite(t.raw(), 1, n, out) == n;
    for (size_t pad = align_up(n, alignment) - n; ok && pad > 0;) {
      const size_t chunk = std::min(pad, sizeof(kZeros));
      ok = std::fwrite(kZeros, 1, chunk, out) == chunk;
      pad -= chunk;
    }
  }
  ok = (std::fclose(out) == 0) && ok;
  if (!ok) {
    std::filesystem::remove(tmp);
    fail("[gguf] {}: write failed: {}", where, std::strerror(errno));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    fail("[gguf] {}: cannot rename the written file into place: {}", where, ec.message());
  }
}

void write_gguf(const std::filesystem::path& path,
                const std::vector<std::pair<std::string, GgufValue>>& metadata,
                const std::vector<std::pair<std::string, Tensor>>& tensors, uint64_t alignment) {
  std::vector<GgufTensorSource> sources;
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;
    const Tensor& tensor = entry.second;  // (Clang 14 cannot capture a structured binding)
    ZF_CHECK(tensor.defined(), "[gguf] {}: tensor '{}' is undefined", path.string(), name);
    ZF_CHECK(tensor.device() == Device::CPU, "[gguf] {}: tensor '{}' is on {}, not the CPU",
             path.string(), name, device_name(tensor.device()));
    sources.push_back({name, tensor.shape(), tensor.dtype(), [&tensor] { return tensor; }});
  }
  write_gguf_streamed(path, metadata, sources, alignment);
}

}  // namespace zflow::io
