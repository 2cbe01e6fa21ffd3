#include "text/gguf_tokenizer.h"

#include "core/error.h"
#include "text/bpe_model.h"
#include "text/tekken_tokenizer.h"

namespace zflow::text {

namespace {

// llama.cpp's llama_token_type values.
enum GgufTokenType : int64_t { kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5 };

const io::GgufValue& required(const io::GgufHeader& header, const std::string& key,
                              const std::string& source) {
  const io::GgufValue* v = header.find(key);
  if (v == nullptr) fail("[tokenizer] {}: GGUF key {} is missing", source, key);
  return *v;
}

}  // namespace

bool gguf_has_tokenizer(const io::GgufHeader& header) {
  return header.find("tokenizer.ggml.model") != nullptr;
}

BpeTokenizer bpe_tokenizer_from_gguf(const io::GgufHeader& header, const std::string& source) {
  const std::string model =
      required(header, "tokenizer.ggml.model", source).as_string(source + ": tokenizer.ggml.model");
  if (model != "gpt2")
    fail(
        "[tokenizer] {}: tokenizer.ggml.model is '{}'; zflow reads byte-level BPE ('gpt2') "
        "tokenizers from GGUF files",
        source, model);
  const io::GgufValue* pre = header.find("tokenizer.ggml.pre");
  const std::string pre_name = pre ? pre->as_string(source + ": tokenizer.ggml.pre") : "default";
  // Each pre-tokenizer as the model's tokenizer.json has it: Qwen's NFC and split regex, or
  // Tekken's regex with whole-token lookups first and no normalizer (text/tekken_tokenizer.h).
  const bool tekken = pre_name == "tekken";
  if (pre_name != "qwen2" && !tekken)
    fail(
        "[tokenizer] {}: tokenizer.ggml.pre is '{}'; zflow knows the 'qwen2' and 'tekken' "
        "pre-tokenizers",
        source, pre_name);

  const std::vector<std::string> tokens = required(header, "tokenizer.ggml.tokens", source)
                                              .as_strings(source + ": tokenizer.ggml.tokens");
  std::vector<int64_t> types(tokens.size(), kNormal);
  if (const io::GgufValue* t = header.find("tokenizer.ggml.token_type"))
    types = t->as_ints(source + ": tokenizer.ggml.token_type");
  if (types.size() != tokens.size())
    fail("[tokenizer] {}: {} token types for {} tokens", source, types.size(), tokens.size());

  VocabEntries vocab;
  std::vector<AddedToken> added;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const auto i = static_cast<int32_t>(id);
    if (types[id] == kControl || types[id] == kUserDefined)
      added.push_back({.content = tokens[id], .id = i, .special = types[id] == kControl});
    else if (types[id] != kUnused)
      vocab.emplace_back(tokens[id], i);
  }

  std::vector<std::pair<std::string, std::string>> merges;
  for (const std::string& m : required(header, "tokenizer.ggml.merges", source)
                                  .as_strings(source + ": tokenizer.ggml.merges")) {
    const size_t space = m.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == m.size())
      fail("[tokenizer] {}: tokenizer.ggml.merges entry '{}' is not 'left right'", source, m);
    merges.emplace_back(m.substr(0, space), m.substr(space + 1));
  }
  auto bpe = std::make_unique<BpeModel>(std::move(vocab), merges, /*ignore_merges=*/tekken, source);
  return BpeTokenizer(std::move(bpe), std::move(added), Normalization{.nfc = !tekken},
                      {SplitRule{std::string(tekken ? kTekkenSplitPattern : kQwen2SplitPattern)}});
}

}  // namespace zflow::text
