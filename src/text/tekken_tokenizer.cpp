#include "text/tekken_tokenizer.h"

#include "core/error.h"
#include "text/tokenizer_json_reader.h"

namespace zflow::text {

namespace fs = std::filesystem;

namespace {

BpeTokenizer from_vocab_merges(const fs::path& folder) {
  const fs::path vocab = folder / "vocab.json";
  VocabMergesOptions options;
  options.nfc = false;
  options.ignore_merges = true;
  options.splits = {{std::string(kTekkenSplitPattern)}};
  // transformers adds these as AddedToken(content, special=True): not normalized, no strip.
  for (const auto& [token, id] : read_vocab_json(vocab))
    if (id < kTekkenSpecialTokens)
      options.added_tokens.push_back({.content = token, .id = id, .special = true});
  ZF_CHECK(options.added_tokens.size() == static_cast<size_t>(kTekkenSpecialTokens),
           "[tokenizer] {}: has {} entries below id {}, expected the {} Tekken special tokens",
           vocab.string(), options.added_tokens.size(), kTekkenSpecialTokens, kTekkenSpecialTokens);
  return BpeTokenizer::from_vocab_merges(vocab, folder / "merges.txt", options);
}

}  // namespace

BpeTokenizer load_tekken_tokenizer(const fs::path& path) {
  if (fs::is_regular_file(path)) return BpeTokenizer::from_tokenizer_json(path);
  if (!fs::is_directory(path)) fail("[tokenizer] {}: no such file or folder", path.string());
  if (fs::is_regular_file(path / "tokenizer.json"))
    return BpeTokenizer::from_tokenizer_json(path / "tokenizer.json");
  if (fs::is_regular_file(path / "vocab.json") && fs::is_regular_file(path / "merges.txt"))
    return from_vocab_merges(path);
  if (fs::is_directory(path / "tokenizer")) return load_tekken_tokenizer(path / "tokenizer");
  fail(
      "[tokenizer] {}: no tokenizer.json, nor vocab.json + merges.txt (a Tekken tokenizer in "
      "Hugging Face form; tekken.json itself is not read)",
      path.string());
}

}  // namespace zflow::text
