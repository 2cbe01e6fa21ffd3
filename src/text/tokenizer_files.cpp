// Loading BpeTokenizer from HF files: tokenizer.json, or vocab.json + merges.txt
// (+ tokenizer_config.json for the added tokens). Unsupported components are errors that name
// the file and the component, never silently ignored.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"
#include "text/bpe_model.h"
#include "text/bpe_tokenizer.h"
#include "text/tokenizer_json_reader.h"

namespace zflow::text {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// HF ByteLevel's own pre-tokenizer regex (GPT-2), used when a file says use_regex: true.
constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

json parse_json(const fs::path& path) {
  const std::string text = read_text_file(path, "tokenizer");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail("[tokenizer] {}: not valid JSON: {}", path.string(), e.what());
  }
}

// Reads a field with a default when absent or null.
template <typename T>
T get_or(const json& object, const char* key, T fallback) {
  const auto it = object.find(key);
  return it == object.end() || it->is_null() ? fallback : it->get<T>();
}

AddedToken parse_added_token(const json& entry, int32_t id) {
  AddedToken token;
  token.content = entry.at("content").get<std::string>();
  token.id = id;
  token.special = get_or(entry, "special", false);
  token.lstrip = get_or(entry, "lstrip", false);
  token.rstrip = get_or(entry, "rstrip", false);
  token.single_word = get_or(entry, "single_word", false);
  // HF's default: specials are matched on raw text, other added tokens on normalized text.
  token.normalized = get_or(entry, "normalized", !token.special);
  return token;
}

bool parse_normalizer(const json& normalizer) {
  if (normalizer.is_null()) return false;
  const std::string type = normalizer.at("type").get<std::string>();
  if (type == "NFC") return true;
  if (type == "Sequence") {
    bool nfc = false;
    for (const json& step : normalizer.at("normalizers")) {
      if (!parse_normalizer(step)) fail("unsupported normalizer in Sequence: {}", step.dump());
      nfc = true;
    }
    return nfc;
  }
  fail("unsupported normalizer '{}' (only NFC is implemented)", type);
}

// Escapes a literal so that PCRE2 matches it as written.
std::string regex_literal(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}-/#").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

void parse_pre_tokenizer(const json& pre, std::vector<SplitRule>& splits, bool& byte_level) {
  const std::string type = pre.at("type").get<std::string>();
  if (type == "Sequence") {
    for (const json& step : pre.at("pretokenizers")) parse_pre_tokenizer(step, splits, byte_level);
  } else if (type == "Split") {
    const json& pattern = pre.at("pattern");
    SplitRule rule;
    if (pattern.contains("Regex")) {
      rule.pattern = pattern.at("Regex").get<std::string>();
    } else {
      rule.pattern = regex_literal(pattern.at("String").get<std::string>());
    }
    const std::string behavior = pre.at("behavior").get<std::string>();
    if (behavior == "Isolated") {
      rule.behavior = SplitBehavior::Isolated;
    } else if (behavior == "Removed") {
      rule.behavior = SplitBehavior::Removed;
    } else {
      fail("unsupported Split behavior '{}' (Isolated and Removed are implemented)", behavior);
    }
    rule.invert = get_or(pre, "invert", false);
    splits.push_back(std::move(rule));
  } else if (type == "ByteLevel") {
    if (get_or(pre, "add_prefix_space", false)) {
      fail("ByteLevel with add_prefix_space: true is not implemented");
    }
    if (get_or(pre, "use_regex", true)) splits.push_back({std::string(kGpt2SplitPattern)});
    byte_level = true;
  } else {
    fail("unsupported pre_tokenizer '{}'", type);
  }
}

void check_byte_level_component(const json& component, const char* what) {
  if (component.is_null()) return;
  const std::string type = component.at("type").get<std::string>();
  if (type != "ByteLevel") fail("unsupported {} '{}' (only ByteLevel is implemented)", what, type);
}

std::unique_ptr<BpeModel> make_model(TokenizerJson& file, const fs::path& path) {
  const json& model = file.rest.at("model");
  const std::string type = get_or<std::string>(model, "type", "BPE");
  if (type != "BPE") fail("model type '{}' is not BPE", type);
  if (get_or(model, "dropout", 0.0) != 0.0) fail("BPE dropout is not implemented");
  if (!get_or<std::string>(model, "continuing_subword_prefix", "").empty() ||
      !get_or<std::string>(model, "end_of_word_suffix", "").empty()) {
    fail("BPE continuing_subword_prefix / end_of_word_suffix are not implemented");
  }
  if (get_or(model, "byte_fallback", false)) fail("BPE byte_fallback is not implemented");
  if (!file.has_vocab) fail("model.vocab is missing");
  if (!file.has_merges) fail("model.merges is missing");
  return std::make_unique<BpeModel>(std::move(file.vocab), file.merges,
                                    get_or(model, "ignore_merges", false), path.string());
}

}  // namespace

BpeTokenizer BpeTokenizer::from_tokenizer_json(const fs::path& path) {
  TokenizerJson file = read_tokenizer_json(path);
  const json& root = file.rest;
  try {
    std::vector<AddedToken> added;
    const json added_entries = get_or(root, "added_tokens", json::array());
    for (const json& entry : added_entries) {
      added.push_back(parse_added_token(entry, entry.at("id").get<int32_t>()));
    }
    const bool nfc = parse_normalizer(get_or(root, "normalizer", json()));
    std::vector<SplitRule> splits;
    bool byte_level = false;
    const json pre = get_or(root, "pre_tokenizer", json());
    if (!pre.is_null()) parse_pre_tokenizer(pre, splits, byte_level);
    if (!byte_level) fail("the pre_tokenizer has no ByteLevel step (not a byte-level BPE)");
    check_byte_level_component(get_or(root, "decoder", json()), "decoder");
    check_byte_level_component(get_or(root, "post_processor", json()), "post_processor");
    return BpeTokenizer(make_model(file, path), std::move(added), Normalization{.nfc = nfc},
                        splits);
  } catch (const json::exception& e) {
    fail("[tokenizer] {}: malformed tokenizer.json: {}", path.string(), e.what());
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.find(path.string()) != std::string::npos) throw;
    fail("[tokenizer] {}: {}", path.string(),
         what.starts_with("[tokenizer] ") ? what.substr(12) : what);
  }
}

BpeTokenizer BpeTokenizer::from_vocab_merges(const fs::path& vocab_json, const fs::path& merges_txt,
                                             const VocabMergesOptions& options) {
  VocabEntries vocab = read_vocab_json(vocab_json);
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream lines(read_text_file(merges_txt, "tokenizer"));
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (number == 1 && line.starts_with("#version"))) continue;
    try {
      merges.push_back(split_merge(line));
    } catch (const Error& e) {
      fail("[tokenizer] {}: line {}: {}", merges_txt.string(), number, e.what());
    }
  }
  const std::string source = vocab_json.string() + " + " + merges_txt.string();
  return BpeTokenizer(std::make_unique<BpeModel>(std::move(vocab), merges, options.ignore_merges,
                                                 source, options.end_of_word_suffix),
                      options.added_tokens,
                      Normalization{.nfc = options.nfc,
                                    .collapse_whitespace = options.collapse_whitespace,
                                    .lowercase = options.lowercase},
                      options.splits);
}

BpeTokenizer load_bpe_tokenizer(const fs::path& path) {
  if (fs::is_regular_file(path)) return BpeTokenizer::from_tokenizer_json(path);
  if (!fs::is_directory(path)) fail("[tokenizer] {}: no such file or folder", path.string());
  if (fs::is_regular_file(path / "tokenizer.json")) {
    return BpeTokenizer::from_tokenizer_json(path / "tokenizer.json");
  }
  const fs::path config_path = path / "tokenizer_config.json";
  if (fs::is_regular_file(path / "vocab.json") && fs::is_regular_file(config_path)) {
    const json config = parse_json(config_path);
    VocabMergesOptions options;
    try {
      const std::string tokenizer_class = get_or<std::string>(config, "tokenizer_class", "");
      if (tokenizer_class != "Qwen2Tokenizer" && tokenizer_class != "Qwen2TokenizerFast") {
        fail(
            "tokenizer_class '{}' is not Qwen2Tokenizer; without a tokenizer.json its "
            "pre-tokenizer is unknown",
            tokenizer_class);
      }
      const json decoder = get_or(config, "added_tokens_decoder", json::object());
      for (const auto& [id, entry] : decoder.items()) {
        options.added_tokens.push_back(parse_added_token(entry, std::stoi(id)));
      }
    } catch (const std::exception& e) {
      fail("[tokenizer] {}: {}", config_path.string(), e.what());
    }
    return BpeTokenizer::from_vocab_merges(path / "vocab.json", path / "merges.txt", options);
  }
  if (fs::is_directory(path / "tokenizer")) return load_bpe_tokenizer(path / "tokenizer");
  fail("[tokenizer] {}: no tokenizer.json, nor vocab.json + merges.txt + tokenizer_config.json",
       path.string());
}

}  // namespace zflow::text
