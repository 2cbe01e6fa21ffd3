#include "io/torch_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/torch_pickle.h"
#include "io/zip_directory.h"

namespace zflow::io {
namespace {

namespace fs = std::filesystem;

constexpr uint8_t kPickleProto = 0x80;

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::ranges::transform(ext, ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

// The furthest element a view reaches, plus one; nullopt when it overflows.
std::optional<int64_t> extent(const TorchTensorRecord& t) {
  int64_t end = t.storage_offset;
  for (size_t d = 0; d < t.shape.size(); ++d) {
    if (t.shape[d] < 0 || t.strides[d] < 0) return std::nullopt;
    if (t.shape[d] == 0) return t.storage_offset;
    if (t.strides[d] > 0 && t.shape[d] - 1 > (INT64_MAX - end) / t.strides[d]) return std::nullopt;
    end += (t.shape[d] - 1) * t.strides[d];
  }
  return end + 1;
}

// Elements of the shape; nullopt when it overflows.
std::optional<int64_t> numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || (d > 0 && n > INT64_MAX / d)) return std::nullopt;
    n *= d;
  }
  return n;
}

bool contiguous(const TorchTensorRecord& t) {
  int64_t expected = 1;
  for (size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.strides[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

// A strided view's elements gathered into a new contiguous tensor.
Tensor gather(const uint8_t* storage, const TorchTensorRecord& t) {
  Tensor out = Tensor::empty(t.shape, t.dtype);
  const size_t element = dtype_size(t.dtype);
  auto* dst = static_cast<uint8_t*>(out.raw());
  std::vector<int64_t> index(t.shape.size(), 0);
  for (int64_t n = 0; n < out.numel(); ++n) {
    int64_t at = t.storage_offset;
    for (size_t d = 0; d < index.size(); ++d) at += index[d] * t.strides[d];
    std::memcpy(dst + n * element, storage + at * element, element);
    for (size_t d = index.size(); d-- > 0;) {
      if (++index[d] < t.shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

}  // namespace

NamedTensors read_torch_checkpoint(std::span<const uint8_t> archive, std::shared_ptr<void> owner,
                                   const std::string& source) {
  const std::vector<ZipEntry> entries = read_zip_directory(archive, source);
  std::map<std::string, const ZipEntry*> by_name;
  const ZipEntry* pickle = nullptr;
  for (const ZipEntry& e : entries) {
    by_name[e.name] = &e;
    // The archive's one top-level folder holds data.pkl (its name is the saved file's stem).
    if (e.name.ends_with("/data.pkl") && std::count(e.name.begin(), e.name.end(), '/') == 1)
      pickle = &e;
  }
  ZF_CHECK(pickle != nullptr,
           "[torch] {}: a ZIP archive without <folder>/data.pkl: not a torch.save checkpoint",
           source);
  ZF_CHECK(pickle->stored, "[torch] {}: data.pkl is compressed; torch.save stores it", source);
  const std::string folder = pickle->name.substr(0, pickle->name.size() - 8);
  if (const auto it = by_name.find(folder + "byteorder"); it != by_name.end()) {
    const ZipEntry& e = *it->second;
    const std::string order(reinterpret_cast<const char*>(archive.data() + e.offset),
                            std::min<uint64_t>(e.size, 16));
    ZF_CHECK(order == "little", "[torch] {}: a checkpoint written in '{}' byte order", source,
             order);
  }

  const auto records = read_torch_pickle(archive.subspan(pickle->offset, pickle->size), source);
  auto storage =
      Storage::borrow(const_cast<uint8_t*>(archive.data()), archive.size(), std::move(owner));
  NamedTensors out;
  for (const TorchTensorRecord& t : records) {
    const auto it = by_name.find(folder + "data/" + t.storage_key);
    ZF_CHECK(it != by_name.end(),
             "[torch] {}: tensor '{}' names storage '{}', which the archive "
             "does not hold",
             source, t.name, t.storage_key);
    const ZipEntry& e = *it->second;
    ZF_CHECK(e.stored, "[torch] {}: storage '{}' is compressed; torch.save stores it", source,
             t.storage_key);
    const int64_t element = static_cast<int64_t>(dtype_size(t.dtype));
    const int64_t held = static_cast<int64_t>(e.size) / element;
    // Within its storage, and no larger than it (a stride-0 view saved as it was would be).
    const auto end = extent(t);
    const auto count = numel(t.shape);
    ZF_CHECK(t.storage_offset >= 0 && end && *end <= held && count && *count <= held,
             "[torch] {}: tensor '{}' {} with strides {} at element {} reaches past its storage "
             "'{}' of {} elements",
             source, t.name, shape_str(t.shape), shape_str(t.strides), t.storage_offset,
             t.storage_key, held);
    // torch.save aligns every storage to 64 bytes; a view of one that is not aligned to its
    // element size is copied, as strided ones are, so no kernel reads a misaligned element.
    const uint64_t at = e.offset + static_cast<uint64_t>(t.storage_offset * element);
    const bool in_place = contiguous(t) && at % static_cast<uint64_t>(element) == 0;
    const Tensor tensor = in_place ? Tensor::over(storage, at, t.shape, t.dtype)
                                   : gather(archive.data() + e.offset, t);
    out.emplace_back(t.name, tensor);
  }
  return out;
}

NamedTensors read_torch_checkpoint(const fs::path& path) {
  const auto file = MappedFile::open(path, AccessPattern::Random);
  if (!starts_with_zip_magic(file->bytes()))
    fail(
        "[torch] {}: a checkpoint in the format before PyTorch 1.6, which zflow does not read; "
        "re-save it with a newer torch.save, or convert it to safetensors",
        path.string());
  return read_torch_checkpoint(file->bytes(), file, path.string());
}

bool looks_like_torch_checkpoint(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  uint8_t magic[4] = {};
  in.read(reinterpret_cast<char*>(magic), 4);
  if (in.gcount() != 4) return false;
  if (starts_with_zip_magic(magic)) return true;
  const std::string ext = lower_extension(path);
  return magic[0] == kPickleProto &&
         (ext == ".pt" || ext == ".pth" || ext == ".ckpt" || ext == ".bin");
}

}  // namespace zflow::io
