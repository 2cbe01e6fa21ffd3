// The hashes image-sharing sites read from an image's parameters to name the files behind it.
#pragma once

#include <filesystem>
#include <string>

namespace zflow::io {

// A LoRA's short hash as A1111 writes it under "Lora hashes" (its "addnet" hash, which Civitai
// looks up): the first 12 hex digits of the SHA-256 of a .safetensors file's bytes after its
// header, or of the whole file for any other format. Throws Error naming the file if it cannot
// be read.
std::string lora_short_hash(const std::filesystem::path& file);

}  // namespace zflow::io
