#include "text/clip_tokenizer.h"

#include "core/error.h"

namespace zflow::text {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStartOfText = "<|startoftext|>";
constexpr std::string_view kEndOfText = "<|endoftext|>";

int32_t require_id(const BpeTokenizer& bpe, std::string_view token, const fs::path& folder) {
  const auto id = bpe.token_to_id(token);
  if (!id) fail("[clip tokenizer] {}: vocab.json has no '{}'", folder.string(), token);
  return *id;
}

}  // namespace

ClipTokenizer::ClipTokenizer(BpeTokenizer bpe) : bpe_(std::move(bpe)) {}

ClipTokenizer ClipTokenizer::load(const fs::path& path) {
  if (!fs::is_regular_file(path / "vocab.json") && fs::is_directory(path / "tokenizer")) {
    return load(path / "tokenizer");
  }
  if (!fs::is_regular_file(path / "vocab.json") || !fs::is_regular_file(path / "merges.txt")) {
    fail("[clip tokenizer] {}: no vocab.json + merges.txt (nor a tokenizer/ folder with them)",
         path.string());
  }
  // The two special tokens are in vocab.json too; as added tokens they are cut out of the
  // input whole. Flags as CLIP's tokenizer_config.json gives them: <|endoftext|> is matched on
  // the raw input, <|startoftext|> after normalization (so also when written in capitals).
  VocabMergesOptions options;
  options.nfc = true;
  options.collapse_whitespace = true;
  options.lowercase = true;
  options.end_of_word_suffix = "</w>";
  options.splits = {{std::string(kClipSplitPattern), SplitBehavior::Removed, true},
                    {std::string(kGpt2SplitPattern), SplitBehavior::Isolated, false}};
  BpeTokenizer plain =
      BpeTokenizer::from_vocab_merges(path / "vocab.json", path / "merges.txt", options);
  options.added_tokens = {
      AddedToken{.content = std::string(kStartOfText),
                 .id = require_id(plain, kStartOfText, path),
                 .special = true,
                 .normalized = true},
      AddedToken{.content = std::string(kEndOfText),
                 .id = require_id(plain, kEndOfText, path),
                 .special = true,
                 .normalized = false},
  };
  ClipTokenizer tokenizer(
      BpeTokenizer::from_vocab_merges(path / "vocab.json", path / "merges.txt", options));
  tokenizer.bos_id_ = options.added_tokens[0].id;
  tokenizer.eos_id_ = options.added_tokens[1].id;
  tokenizer.pad_id_ = tokenizer.eos_id_;  // pad_token is <|endoftext|>
  return tokenizer;
}

std::vector<int32_t> ClipTokenizer::encode(std::string_view text, size_t max_length,
                                           bool pad) const {
  ZF_CHECK(max_length >= 2, "[clip tokenizer] max_length {} leaves no room for BOS and EOS",
           max_length);
  std::vector<int32_t> ids = bpe_.encode(text);
  if (ids.size() > max_length - 2) ids.resize(max_length - 2);
  ids.insert(ids.begin(), bos_id_);
  ids.push_back(eos_id_);
  if (pad) ids.resize(max_length, pad_id_);
  return ids;
}

std::string ClipTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string text = bpe_.decode(ids, skip_special);
  // Word ends show as "</w>"; transformers turns each into a space and strips the ends.
  std::string out;
  for (size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, 4, "</w>") == 0) {
      out.push_back(' ');
      pos += 4;
    } else {
      out.push_back(text[pos++]);
    }
  }
  const size_t first = out.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return out.substr(first, out.find_last_not_of(' ') - first + 1);
}

}  // namespace zflow::text
