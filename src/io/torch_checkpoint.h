// PyTorch checkpoints as torch.save writes them since PyTorch 1.6 (`.pth`, `.pt`, `.ckpt`, `.bin`):
// a ZIP archive (io/zip_directory.h) of a pickle, data.pkl, that names each tensor's storage,
// offset, shape and strides (io/torch_pickle.h, read without being run), and one stored entry per
// storage, data/<key>, holding its raw little-endian bytes. Contiguous tensors are views of those
// bytes in place (zero-copy over the memory-mapped file); a strided one (a transposed or sliced
// tensor saved as it was) is copied out. The format before PyTorch 1.6 is refused with a message
// saying how to convert it.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace zflow::io {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The tensors of a checkpoint held in `archive`, which `owner` keeps alive (may be empty when the
// caller keeps the bytes alive longer than the tensors). Every range is checked against the
// archive and each storage; errors name `source`.
NamedTensors read_torch_checkpoint(std::span<const uint8_t> archive, std::shared_ptr<void> owner,
                                   const std::string& source);

// The same for a file, memory-mapped.
NamedTensors read_torch_checkpoint(const std::filesystem::path& path);

// Whether `path` is a PyTorch checkpoint by its first bytes (a ZIP archive) or, for the format
// before PyTorch 1.6, by its extension (.pt, .pth, .ckpt, .bin) with a pickle's first byte.
bool looks_like_torch_checkpoint(const std::filesystem::path& path);

}  // namespace zflow::io
