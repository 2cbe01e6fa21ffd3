// A byte-level BPE tokenizer as HF tokenizers runs one (Qwen2/Qwen3, and the same shape of
// file for GPT-2-style vocabularies): added tokens are cut out first, the text between them is
// normalized (NFC, and CLIP's whitespace collapse and lower case, when asked), split by the
// pre-tokenizer regexes, mapped to the byte-level alphabet and merged by the BPE model.
// encode(decode) round-trips to NFC(text).
//
// Loaders read tokenizer.json (everything in one file) or vocab.json + merges.txt (the caller
// supplies the added tokens and the pre-tokenizer, which those files lack).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/added_tokens.h"
#include "text/regex_split.h"

namespace zflow::text {

class BpeModel;

// The regex transformers' Qwen2Tokenizer hard-codes for vocab.json + merges.txt; a
// tokenizer.json brings its own.
inline constexpr std::string_view kQwen2SplitPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct SplitRule {
  std::string pattern;  // PCRE2 syntax (HF's Oniguruma patterns mean the same here)
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
};

// The normalizer steps, applied in this order (HF: Sequence[NFC, Replace(\s+, " "), Lowercase]).
struct Normalization {
  bool nfc = false;
  bool collapse_whitespace = false;
  bool lowercase = false;
};

// What vocab.json + merges.txt do not say.
struct VocabMergesOptions {
  std::vector<AddedToken> added_tokens;
  bool nfc = true;
  bool collapse_whitespace = false;
  bool lowercase = false;
  std::string end_of_word_suffix;  // BpeModel option (CLIP: "</w>")
  bool ignore_merges = false;      // BpeModel option (Tekken: whole pieces in the vocabulary)
  std::vector<SplitRule> splits = {{std::string(kQwen2SplitPattern)}};
};

class BpeTokenizer {
 public:
  // Throws zflow::Error naming the file when it is missing, malformed or uses a component
  // this tokenizer does not implement.
  static BpeTokenizer from_tokenizer_json(const std::filesystem::path& path);
  static BpeTokenizer from_vocab_merges(const std::filesystem::path& vocab_json,
                                        const std::filesystem::path& merges_txt,
                                        const VocabMergesOptions& options);

  BpeTokenizer(std::unique_ptr<BpeModel> model, std::vector<AddedToken> added_tokens,
               Normalization normalization, const std::vector<SplitRule>& splits);
  ~BpeTokenizer();
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;

  // text must be valid UTF-8 ("[tokenizer] input is not valid UTF-8 at byte N" otherwise).
  // No BOS/EOS is added. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // The text of the ids; byte sequences that do not form valid UTF-8 (an id range cut inside a
  // character) become U+FFFD, as in HF. Throws on an id that has no token.
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token as written in the vocabulary (byte-level alphabet, e.g. "Ġworld"), or the content
  // of an added token. Throws on an id that has no token.
  std::string id_to_token(int32_t id) const;
  // One past the largest id, added tokens included.
  size_t vocab_size() const;
  const std::vector<AddedToken>& added_tokens() const { return added_tokens_; }

 private:
  const AddedToken* added_token(int32_t id) const;

  std::unique_ptr<BpeModel> model_;
  std::vector<AddedToken> added_tokens_;
  std::vector<int32_t> added_index_;      // id -> index into added_tokens_, or -1
  AddedTokenMatcher raw_matcher_;         // tokens matched on the input as given
  AddedTokenMatcher normalized_matcher_;  // tokens matched after normalization
  Normalization normalization_;
  std::vector<RegexSplit> splits_;
};

// Loads the tokenizer of a model: `path` is a tokenizer.json file, a folder holding one, or a
// folder with vocab.json + merges.txt + tokenizer_config.json (tokenizer_class Qwen2Tokenizer;
// its added_tokens_decoder gives the added tokens). A model folder's tokenizer/ subfolder is
// looked into as well.
BpeTokenizer load_bpe_tokenizer(const std::filesystem::path& path);

}  // namespace zflow::text
