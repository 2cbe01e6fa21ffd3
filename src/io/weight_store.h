// WeightStore: the weights of one model component by name, gathered from a single
// safetensors, GGUF or PyTorch checkpoint (.pth / .pt / .ckpt, io/torch_checkpoint.h) file, a
// sharded set (`*.safetensors.index.json`) or a folder, with zero-copy tensors over the
// memory-mapped files (GGUF block-quantised tensors stay in their block dtype; ComfyUI float8
// weights stay float8 with their scale, io/fp8_weights.h). Models bind their parameters by name
// through get(), which checks shapes and names the file in every error.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace zflow::io {

struct GgufHeader;

class WeightStore;

// Asks the kernel to read the store's memory-mapped weights into the page cache (MADV_WILLNEED),
// so a forward finds them there instead of faulting them in from disk between its matmuls. The
// reads go on after it returns.
void read_ahead(const WeightStore& store);
// read_ahead on a background thread (the asking itself takes a while for gigabytes), unless the
// weights would take more than 3/4 of the memory the kernel has available: reading them ahead
// would then push out pages still needed (a log line says so).
void read_ahead_in_background(const WeightStore& store, std::string_view what);

class WeightStore {
 public:
  // Opens a .safetensors file, a GGUF file (told by its magic, whatever its name), a
  // *.safetensors.index.json, or a folder holding safetensors files or one index. GGUF tensor
  // names are kept as stored; a ComfyUI-GGUF `comfy.gguf.orig_shape.<name>` key gives a
  // tensor its original shape (dequantised to float32 when that shape splits its blocks).
  // Safetensors float8 and int8 weights are paired with their scales (resolve_fp8_weights,
  // resolve_int8_weights).
  static WeightStore open(const std::filesystem::path& path);

  // Adds a tensor by hand (tests, random weights, converted layouts).
  void add(const std::string& name, Tensor tensor, const std::string& source = "<memory>");
  // Replaces the tensor `name` (which must be present), keeping its source; removes one.
  void replace(const std::string& name, Tensor tensor);
  void remove(const std::string& name);

  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  size_t size() const { return entries_.size(); }
  std::vector<std::string> names() const;

  // The tensor named `name`; an Error names the source files when it is absent.
  Tensor get(const std::string& name) const;
  // As get(), and its shape must equal `expected`:
  //   "[load] ae.safetensors: 'decoder.conv_in.weight' has shape [512, 16, 3, 3], expected [...]"
  Tensor get(const std::string& name, const Shape& expected) const;
  const std::string& source_of(const std::string& name) const;

  // A store whose names are rename(name) for every name that maps (nullopt drops it).
  WeightStore renamed(
      const std::function<std::optional<std::string>(const std::string&)>& rename) const;
  // The tensors under `prefix` ("vae." or "first_stage_model."), with the prefix removed.
  WeightStore with_prefix_removed(const std::string& prefix) const;
  // One module's tensors, found by a name only it has (`anchor`, e.g. "embed_tokens.weight"):
  // whatever stands before the anchor ("", "model.", "text_encoders.t5xxl.transformer.") is
  // removed, and tensors outside that prefix are dropped. `what` names the module in errors
  // (none found, several found, a prefix that is not a module path).
  WeightStore module_weights(const std::string& anchor, const std::string& what) const;

  const std::string& description() const { return description_; }  // e.g. the path opened

  // The header of the GGUF file the store was opened from (metadata: architecture,
  // hyper-parameters, tokenizer), kept by renamed() and friends; nullptr otherwise.
  const GgufHeader* gguf_header() const { return gguf_.get(); }

 private:
  struct Entry {
    Tensor tensor;
    std::string source;
  };
  std::map<std::string, Entry> entries_;
  std::string description_ = "<memory>";
  std::shared_ptr<const GgufHeader> gguf_;
};

// Where a component's weights are when `path` may be a whole model folder: path / sub when path
// is a folder without its own config.json that holds sub/ (a diffusers folder given for its
// transformer/), else path itself.
std::filesystem::path component_folder(const std::filesystem::path& path, const std::string& sub);

// The config.json that describes what WeightStore::open(path) opens: the one in a component
// folder or beside an index. None for a single .safetensors file, whose neighbours may belong
// to another component.
std::optional<std::filesystem::path> component_config_json(const std::filesystem::path& path);

}  // namespace zflow::io
