#include "pipeline/pipeline_files.h"

#include <algorithm>
#include <cctype>
#include <fstream>

#include "io/gguf.h"
#include "io/weight_store.h"
#include "models/detect.h"
#include "text/gguf_tokenizer.h"

namespace zflow::pipeline {

namespace fs = std::filesystem;

nlohmann::json read_json_file(const fs::path& path, std::string_view family) {
  std::ifstream in(path);
  if (!in) fail("[{}] {}: cannot open", family, path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("[{}] {}: not valid JSON ({})", family, path.string(), e.what());
  }
}

fs::path component_path(std::string_view family, std::string_view folder, const fs::path& model_dir,
                        const fs::path& given, std::string_view sub, std::string_view what) {
  if (!given.empty()) {
    if (!fs::exists(given))
      fail("[{}] {} {}: no such file or folder", family, what, given.string());
    return given;
  }
  if (model_dir.empty())
    fail("[{}] no {} given: name its file, or a diffusers {} folder holding {}/", family, what,
         folder, sub);
  const fs::path path = model_dir / sub;
  if (!fs::exists(path))
    fail("[{}] {}: {} is missing (expected the diffusers folder's {}/); give the {} separately",
         family, model_dir.string(), path.string(), sub, what);
  return path;
}

std::string what_it_holds(const fs::path& path) {
  try {
    if (const auto found = models::detect_component(io::WeightStore::open(path)))
      return fmt::format(" (it holds a {}, {} layout)", found->architecture, found->layout);
  } catch (const Error&) {
    // Not weights at all: the loader's own message says what is wrong.
  }
  return "";
}

bool name_mentions(const fs::path& path, std::string_view word) {
  std::string name =
      path.filename().empty() ? path.parent_path().filename().string() : path.filename().string();
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name.find(word) != std::string::npos;
}

std::optional<text::BpeTokenizer> gguf_text_encoder_tokenizer(const fs::path& given_tokenizer,
                                                              const fs::path& model_dir,
                                                              const fs::path& text_encoder) {
  if (!given_tokenizer.empty() || (!model_dir.empty() && fs::exists(model_dir / "tokenizer")) ||
      text_encoder.extension() != ".gguf")
    return std::nullopt;
  const io::GgufFile file = io::GgufFile::open(text_encoder);
  if (!text::gguf_has_tokenizer(file.header())) return std::nullopt;
  return text::bpe_tokenizer_from_gguf(file.header(), text_encoder.string());
}

}  // namespace zflow::pipeline
