// Reads tokenizer.json in one SAX pass: model.vocab and model.merges (150k+ entries each for
// Qwen) go straight into the BPE model's containers, everything else into a small JSON DOM.
// nlohmann's DOM parse of the 11 MB Qwen3 file alone takes 200-400 ms (a std::map node per
// vocabulary entry); this reader avoids that DOM.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "text/bpe_model.h"

namespace zflow::text {

struct TokenizerJson {
  nlohmann::json rest;  // the document without model.vocab and model.merges
  VocabEntries vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  bool has_vocab = false;
  bool has_merges = false;
};

// Throws zflow::Error naming the file when it cannot be read or is not valid JSON, or when
// model.vocab / model.merges have the wrong shape.
TokenizerJson read_tokenizer_json(const std::filesystem::path& path);

// Reads vocab.json (an object of token -> id) in one SAX pass.
VocabEntries read_vocab_json(const std::filesystem::path& path);

// "a b" -> {"a", "b"}; throws when text is not two tokens separated by one space.
std::pair<std::string, std::string> split_merge(std::string_view text);

}  // namespace zflow::text
