// Unicode normalization for tokenizers whose tokenizer.json names a normalizer (Qwen: NFC).
#pragma once

#include <string>
#include <string_view>

namespace zflow::text {

// The NFC form of valid UTF-8 text (utf8proc, Unicode 15). ASCII text is returned unchanged
// without calling into utf8proc.
std::string nfc(std::string_view text);

// Every run of White_Space characters replaced by one ASCII space, as HF's
// Replace(Regex("\\s+"), " ") normalizer does (CLIP). Valid UTF-8 in and out.
std::string collapse_whitespace(std::string_view text);

// Lower case, character by character, as HF's Lowercase normalizer does (Rust's
// char::to_lowercase: full mappings, so U+0130 becomes "i" + U+0307; no final-sigma rule).
std::string lowercase(std::string_view text);

}  // namespace zflow::text
