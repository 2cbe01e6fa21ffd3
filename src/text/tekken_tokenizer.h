// Mistral's Tekken tokenizer (v7: Mistral-Small-3.1 / 3.2, FLUX.2-dev's text encoder) in the
// Hugging Face form transformers converts it to (integrations/mistral/tokenizer.py): a byte-level
// BPE whose merges follow the token ranks, with
//   - no normalizer (no NFC),
//   - the Tekken split regex, then ByteLevel without its own regex,
//   - ignore_merges (a piece that is a whole token maps to it, as tiktoken looks pieces up first),
//   - ids 0..999 reserved for special tokens (<unk>, <s>, </s>, [INST], ..., <pad> = 11,
//     [SYSTEM_PROMPT] = 17, ...), matched as added tokens; the byte tokens start at 1000.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>

#include "text/bpe_tokenizer.h"

namespace zflow::text {

// The split regex of Tekken files (tekken.json config.pattern; transformers' GGUF map names the
// same pattern "tekken").
inline constexpr std::string_view kTekkenSplitPattern =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// How many ids at the start of the vocabulary are special tokens.
inline constexpr int32_t kTekkenSpecialTokens = 1000;

// Loads a Tekken tokenizer: `path` is a tokenizer.json (as a diffusers FLUX.2-dev tokenizer/
// folder holds it), a folder holding one (or a tokenizer/ subfolder that does), or a folder with
// vocab.json + merges.txt in the byte-level alphabet (the first kTekkenSpecialTokens entries are
// the special tokens). Errors name the file and what is wrong.
BpeTokenizer load_tekken_tokenizer(const std::filesystem::path& path);

}  // namespace zflow::text
