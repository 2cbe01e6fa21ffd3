#include "io/weight_store.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/memory_usage.h"
#include "io/fp8_weights.h"
#include "io/gguf.h"
#include "io/int8_weights.h"
#include "io/safetensors.h"
#include "io/torch_checkpoint.h"

namespace zflow::io {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kIndexSuffix = ".safetensors.index.json";
constexpr std::string_view kSafetensorsSuffix = ".safetensors";
// An index of a few thousand tensors is well under a megabyte; anything near this is
// not an index.
constexpr uintmax_t kMaxIndexBytes = 64 << 20;

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

constexpr const char* kQuantizationMetadata = "_quantization_metadata";  // ComfyUI's

// Keeps a file's ComfyUI quantisation metadata for resolve_fp8_weights.
void note_quantization(const SafetensorsFile& file, std::vector<std::string>& quantization) {
  const auto it = file.metadata().find(kQuantizationMetadata);
  if (it != file.metadata().end()) quantization.push_back(it->second);
}

// Adds every tensor of `file` to `store`; a name already there is reported with both files.
void add_file(WeightStore& store, const SafetensorsFile& file,
              std::vector<std::string>& quantization) {
  note_quantization(file, quantization);
  const std::string source = file.path().string();
  for (const TensorInfo& info : file.tensors()) {
    if (store.contains(info.name))
      fail("[load] tensor '{}' is in both {} and {}; open one of them directly", info.name,
           store.source_of(info.name), source);
    store.add(info.name, file.tensor(info.name), source);
  }
}

bool starts_with_gguf_magic(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && is_gguf({reinterpret_cast<const uint8_t*>(magic), 4});
}

// ComfyUI-GGUF's converter stores tensors it had to reshape (more than 4 dims, or rows that
// are not whole blocks) with the original shape in `comfy.gguf.orig_shape.<name>`.
Tensor with_original_shape(const GgufFile& file, const GgufTensorInfo& info, Tensor t) {
  const std::string key = "comfy.gguf.orig_shape." + info.name;
  const GgufValue* v = file.find_metadata(key);
  if (v == nullptr) return t;
  Shape shape;
  for (int64_t d : v->as_ints(key)) shape.push_back(d);
  ZF_CHECK(shape_numel(shape) == t.numel(),
           "[load] {}: {} is {}, which does not hold the {} values of tensor '{}' ({})",
           file.path().string(), key, shape_str(shape), t.numel(), info.name, shape_str(t.shape()));
  if (dtype_is_quantized(t.dtype()) &&
      (shape.empty() || shape.back() % dtype_block_size(t.dtype()) != 0))
    t = t.to(DType::F32);
  return t.view(shape);
}

WeightStore open_gguf(const fs::path& path, std::shared_ptr<const GgufHeader>& header) {
  const GgufFile file = GgufFile::open(path);
  WeightStore store;
  const std::string source = path.string();
  for (const GgufTensorInfo& info : file.tensors())
    store.add(info.name, with_original_shape(file, info, file.tensor(info.name)), source);
  header = std::make_shared<const GgufHeader>(file.header());
  return store;
}

// The shard file named by an index entry: relative to the index folder, and never
// outside it (no absolute paths, no '..'), so an index cannot point at arbitrary files.
fs::path shard_path(const fs::path& index, const std::string& name, const std::string& shard) {
  const fs::path relative(shard);
  bool escapes = relative.empty() || relative.is_absolute();
  for (const auto& part : relative) escapes = escapes || part == "..";
  if (escapes)
    fail(
        "[load] {}: tensor '{}' maps to shard '{}', which is not a path inside the index's "
        "folder",
        index.string(), name, shard);
  const fs::path full = index.parent_path() / relative;
  if (!fs::is_regular_file(full))
    fail("[load] {}: tensor '{}' maps to shard '{}', which does not exist", index.string(), name,
         full.string());
  return full;
}

// Reads `weight_map` from a transformers / diffusers index, rejecting duplicate keys
// (a tensor listed twice may point at two shards).
std::map<std::string, std::string> read_weight_map(const fs::path& index) {
  const std::string where = index.string();
  std::error_code ec;
  const uintmax_t size = fs::file_size(index, ec);
  if (ec) fail("[load] {}: cannot read: {}", where, ec.message());
  if (size > kMaxIndexBytes)
    fail("[load] {}: {} bytes is too large for a safetensors index", where, size);
  std::ifstream in(index, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) fail("[load] {}: cannot read", where);

  std::vector<std::set<std::string>> keys;
  auto reject_duplicates = [&](int depth, nlohmann::json::parse_event_t event,
                               nlohmann::json& parsed) {
    using E = nlohmann::json::parse_event_t;
    if (event == E::object_start) keys.emplace_back();
    if (event == E::object_end) keys.pop_back();
    if (event == E::key && !keys.back().insert(parsed.get<std::string>()).second)
      fail("[load] {}: key '{}' appears twice", where, parsed.get<std::string>());
    return true;
  };
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.str(), reject_duplicates);
  } catch (const nlohmann::json::exception& e) {
    fail("[load] {}: not valid JSON: {}", where, e.what());
  }
  if (!doc.is_object() || !doc.contains("weight_map") || !doc["weight_map"].is_object())
    fail(
        "[load] {}: expected a JSON object with a 'weight_map' object (a *.safetensors.index.json)",
        where);
  std::map<std::string, std::string> map;
  for (const auto& [name, shard] : doc["weight_map"].items()) {
    if (!shard.is_string())
      fail("[load] {}: tensor '{}' maps to {}, expected a shard file name", where, name,
           shard.type_name());
    map.emplace(name, shard.get<std::string>());
  }
  return map;
}

WeightStore open_index(const fs::path& index, std::vector<std::string>& quantization) {
  const auto weight_map = read_weight_map(index);
  std::map<std::string, fs::path> shards;  // shard name in the index -> resolved path
  for (const auto& [name, shard] : weight_map)
    if (!shards.count(shard)) shards.emplace(shard, shard_path(index, name, shard));

  // Every tensor of every shard, each in exactly one shard, and where the index says.
  WeightStore store;
  std::map<std::string, std::string> holder;  // tensor -> shard name
  for (const auto& [shard, path] : shards) {
    const SafetensorsFile file = SafetensorsFile::open(path);
    note_quantization(file, quantization);
    for (const TensorInfo& info : file.tensors()) {
      if (auto [it, fresh] = holder.emplace(info.name, shard); !fresh)
        fail("[load] {}: tensor '{}' is in two shards, {} and {}", index.string(), info.name,
             it->second, shard);
      store.add(info.name, file.tensor(info.name), path.string());
    }
  }
  for (const auto& [name, shard] : weight_map) {
    auto it = holder.find(name);
    if (it == holder.end())
      fail("[load] {}: tensor '{}' maps to shard {}, which does not hold it", index.string(), name,
           shard);
    if (it->second != shard)
      fail("[load] {}: tensor '{}' maps to shard {}, but it is in {}", index.string(), name, shard,
           it->second);
  }
  return store;
}

// A folder holds either one index (a sharded model) or safetensors files (a diffusers
// component such as vae/ with diffusion_pytorch_model.safetensors).
WeightStore open_folder(const fs::path& folder, std::vector<std::string>& quantization) {
  std::vector<fs::path> indexes, files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file()) continue;
    if (ends_with(name, kIndexSuffix))
      indexes.push_back(entry.path());
    else if (ends_with(name, kSafetensorsSuffix))
      files.push_back(entry.path());
  }
  if (ec) fail("[load] {}: cannot list the folder: {}", folder.string(), ec.message());
  std::sort(indexes.begin(), indexes.end());
  std::sort(files.begin(), files.end());
  if (indexes.size() == 1) return open_index(indexes[0], quantization);
  if (indexes.size() > 1) {
    std::vector<std::string> names;
    for (const auto& p : indexes) names.push_back(p.filename().string());
    fail("[load] {}: several index files ({}); open one of them directly", folder.string(),
         join(names));
  }
  if (files.empty())
    fail("[load] {}: no .safetensors file and no *{} in the folder", folder.string(), kIndexSuffix);
  WeightStore store;
  for (const auto& path : files) add_file(store, SafetensorsFile::open(path), quantization);
  return store;
}

}  // namespace

WeightStore WeightStore::open(const fs::path& path) {
  WeightStore store;
  std::vector<std::string> quantization;
  if (fs::is_directory(path)) {
    store = open_folder(path, quantization);
  } else if (!fs::exists(path)) {
    fail("[load] {}: no such file or folder", path.string());
  } else if (ends_with(path.filename().string(), ".json")) {
    store = open_index(path, quantization);
  } else if (looks_like_torch_checkpoint(path)) {
    for (auto& [name, tensor] : read_torch_checkpoint(path))
      store.add(name, std::move(tensor), path.string());
  } else if (starts_with_gguf_magic(path)) {
    std::shared_ptr<const GgufHeader> header;
    store = open_gguf(path, header);
    store.gguf_ = std::move(header);
  } else {
    add_file(store, SafetensorsFile::open(path), quantization);
  }
  store.description_ = path.string();
  if (!store.gguf_) {
    resolve_int8_weights(store, quantization);
    resolve_fp8_weights(store, quantization);
  }
  return store;
}

void WeightStore::add(const std::string& name, Tensor tensor, const std::string& source) {
  ZF_CHECK(tensor.defined(), "[load] {}: tensor '{}' is undefined", source, name);
  auto [it, fresh] = entries_.emplace(name, Entry{std::move(tensor), source});
  if (!fresh)
    fail("[load] {}: tensor '{}' is already in the store (from {})", source, name,
         it->second.source);
}

void WeightStore::replace(const std::string& name, Tensor tensor) {
  auto it = entries_.find(name);
  ZF_CHECK(it != entries_.end(), "[load] {}: no tensor '{}' to replace", description_, name);
  ZF_CHECK(tensor.defined(), "[load] {}: tensor '{}' replaced by an undefined one",
           it->second.source, name);
  it->second.tensor = std::move(tensor);
}

void WeightStore::remove(const std::string& name) {
  ZF_CHECK(entries_.erase(name) == 1, "[load] {}: no tensor '{}' to remove", description_, name);
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [name, entry] : entries_) out.push_back(name);
  return out;
}

Tensor WeightStore::get(const std::string& name) const {
  auto it = entries_.find(name);
  if (it != entries_.end()) return it->second.tensor;
  // A missing name is most often a prefix problem ("model." / "vae."): name the
  // stored tensors that end with it or that it ends with.
  std::vector<std::string> similar;
  for (const auto& [stored, entry] : entries_) {
    if (similar.size() == 3) break;
    if (ends_with(stored, "." + name) || ends_with(name, "." + stored)) similar.push_back(stored);
  }
  fail("[load] {}: no tensor '{}' among its {} tensors{}", description_, name, entries_.size(),
       similar.empty() ? ""
                       : fmt::format(" (similar: {}; a prefix to add or remove?)", join(similar)));
}

Tensor WeightStore::get(const std::string& name, const Shape& expected) const {
  Tensor t = get(name);
  if (t.shape() != expected)
    fail("[load] {}: '{}' has shape {}, expected {}", source_of(name), name, shape_str(t.shape()),
         shape_str(expected));
  return t;
}

const std::string& WeightStore::source_of(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    fail("[load] {}: no tensor '{}' among its {} tensors", description_, name, entries_.size());
  return it->second.source;
}

WeightStore WeightStore::renamed(
    const std::function<std::optional<std::string>(const std::string&)>& rename) const {
  WeightStore out;
  out.description_ = description_;
  out.gguf_ = gguf_;
  std::map<std::string, std::string> origin;  // new name -> old name
  for (const auto& [name, entry] : entries_) {
    const std::optional<std::string> to = rename(name);
    if (!to) continue;
    if (auto [it, fresh] = origin.emplace(*to, name); !fresh)
      fail("[load] {}: renaming maps both '{}' and '{}' to '{}'", description_, it->second, name,
           *to);
    out.entries_.emplace(*to, entry);
  }
  return out;
}

WeightStore WeightStore::with_prefix_removed(const std::string& prefix) const {
  return renamed([&](const std::string& name) -> std::optional<std::string> {
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0)
      return std::nullopt;
    return name.substr(prefix.size());
  });
}

WeightStore WeightStore::module_weights(const std::string& anchor, const std::string& what) const {
  std::vector<std::string> prefixes;
  for (const auto& [name, entry] : entries_)
    if (name.ends_with(anchor)) prefixes.push_back(name.substr(0, name.size() - anchor.size()));
  ZF_CHECK(!prefixes.empty(), "[load] {}: no '{}' (or '<prefix>.{}'): not a {}", description_,
           anchor, anchor, what);
  ZF_CHECK(prefixes.size() == 1, "[load] {}: {} of them ('{}{}', ...): more than one {}",
           description_, prefixes.size(), prefixes[0], anchor, what);
  const std::string& prefix = prefixes[0];
  ZF_CHECK(prefix.empty() || prefix.ends_with("."),
           "[load] {}: '{}{}' is not under a module prefix", description_, prefix, anchor);
  return prefix.empty() ? *this : with_prefix_removed(prefix);
}

std::filesystem::path component_folder(const std::filesystem::path& path, const std::string& sub) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path) && fs::is_directory(path / sub) && !fs::exists(path / "config.json"))
    return path / sub;
  return path;
}

std::optional<std::filesystem::path> component_config_json(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  const bool is_index = path.filename().string().ends_with(".safetensors.index.json");
  if (!fs::is_directory(path) && !is_index) return std::nullopt;
  const fs::path json = (is_index ? path.parent_path() : path) / "config.json";
  if (!fs::is_regular_file(json)) return std::nullopt;
  return json;
}

void read_ahead(const WeightStore& store) {
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  for (const std::string& name : store.names()) {
    const Tensor t = store.get(name);
    if (t.device() != Device::CPU || t.numel() == 0) continue;
    const auto start = reinterpret_cast<uintptr_t>(t.raw()) / page * page;
    const auto end = reinterpret_cast<uintptr_t>(t.raw()) + t.nbytes();
    ::madvise(reinterpret_cast<void*>(start), end - start, MADV_WILLNEED);
  }
}

void read_ahead_in_background(const WeightStore& store, std::string_view what) {
  size_t bytes = 0;
  for (const std::string& name : store.names()) bytes += store.get(name).nbytes();
  const size_t available = available_memory_bytes();
  if (bytes > available / 4 * 3) {
    log::info("[{}] not reading {:.2f} GB of weights ahead: {:.2f} GB of memory is available", what,
              bytes / 1e9, available / 1e9);
    return;
  }
  // The thread's copy of the store holds the tensors, so their mappings outlive it.
  std::thread([store] { read_ahead(store); }).detach();
}

}  // namespace zflow::io
