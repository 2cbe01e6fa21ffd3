// The byte-level BPE tokenizer a llama.cpp GGUF carries in its tokenizer.ggml.* keys (Qwen3-4B
// GGUFs, the text encoder Z-Image users run quantised; Mistral-Small GGUFs for FLUX.2-dev), so
// such a file needs no tokenizer.json:
//   tokenizer.ggml.model  "gpt2" (byte-level BPE)
//   tokenizer.ggml.pre    the pre-tokenizer's name: "qwen2" (Qwen2/3's split pattern, NFC) or
//                         "tekken" (Mistral's: text/tekken_tokenizer.h)
//   tokenizer.ggml.tokens the vocabulary in id order (byte-level alphabet)
//   tokenizer.ggml.token_type  1 normal, 3 control (a special added token), 4 user-defined (an
//                         added token that is not special), 5 unused (padding ids), ...
//   tokenizer.ggml.merges "left right" in rank order
// Added tokens are matched on the raw text and the rest NFC-normalised (qwen2), as Qwen's
// tokenizer.json says.
#pragma once

#include <string>

#include "io/gguf.h"
#include "text/bpe_tokenizer.h"

namespace zflow::text {

// True when the header has a tokenizer (tokenizer.ggml.model).
bool gguf_has_tokenizer(const io::GgufHeader& header);

// Errors name `source` and the key that is missing, malformed or not supported.
BpeTokenizer bpe_tokenizer_from_gguf(const io::GgufHeader& header, const std::string& source);

}  // namespace zflow::text
