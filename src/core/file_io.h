// Whole small files (configs, indexes, tokenizer files) read into memory.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace zflow {

// The file's bytes; an Error "[<component>] <path>: cannot open ..." when it cannot be read.
std::string read_text_file(const std::filesystem::path& path, std::string_view component);

}  // namespace zflow
