// Finding and loading a pipeline's components, shared by the families: a diffusers folder
// (model_index.json with one sub-folder per component) or each component given on its own, and
// errors that say which component failed, from which path, and what that path holds instead.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "text/bpe_tokenizer.h"

namespace zflow::pipeline {

// A JSON file (model_index.json, scheduler_config.json); errors start with [family].
nlohmann::json read_json_file(const std::filesystem::path& path, std::string_view family);

// The component's path: `given` when set (it must exist), else model_dir / sub (which must
// exist). `what` names the component in errors ("text encoder"), `folder` the kind of diffusers
// folder expected ("Z-Image").
std::filesystem::path component_path(std::string_view family, std::string_view folder,
                                     const std::filesystem::path& model_dir,
                                     const std::filesystem::path& given, std::string_view sub,
                                     std::string_view what);

// The tokenizer a GGUF text encoder carries (llama.cpp's Qwen3 and Mistral files do), used when
// no tokenizer is given and model_dir has no tokenizer/ folder; nullopt otherwise.
std::optional<text::BpeTokenizer> gguf_text_encoder_tokenizer(
    const std::filesystem::path& given_tokenizer, const std::filesystem::path& model_dir,
    const std::filesystem::path& text_encoder);

// " (it holds a qwen3 text encoder, diffusers layout)" when the weights at `path` are some other
// model zflow knows: the likely mistake behind a loader's error. Empty otherwise.
std::string what_it_holds(const std::filesystem::path& path);

// Whether a file's (or, for "folder/", the folder's) name holds `word`, any case: how a lone
// file says which release it is where its weights cannot ("flux-2-klein-base-4b",
// "flux1-kontext-dev").
bool name_mentions(const std::filesystem::path& path, std::string_view word);

// Runs a loader and puts the family, the component and its path in front of any error it raises:
// "[flux] text encoder tiny/vae: ... (it holds a autoencoder kl, diffusers layout)".
template <typename Load>
auto load_component(std::string_view family, std::string_view what,
                    const std::filesystem::path& path, Load&& load) {
  try {
    return std::forward<Load>(load)();
  } catch (const Error& e) {
    fail("[{}] {} {}: {}{}", family, what, path.string(), e.what(), what_it_holds(path));
  }
}

}  // namespace zflow::pipeline
