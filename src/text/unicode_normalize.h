// Unicode normalization for tokenizers whose tokenizer.json names a normalizer (Qwen: NFC).
#pragma once

#include <string>
#include <string_view>

namespace zflow::text {

// The NFC form of valid UTF-8 text (utf8proc, Unicode 15). ASCII text is returned unchanged
// without calling into utf8proc.
std::string nfc(std::string_view text);

}  // namespace zflow::text
