// UTF-8 decoding and validation for the tokenizer: strict (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), and a lossy repair that replaces each maximal ill-formed
// subpart with U+FFFD, as Rust's String::from_utf8_lossy does (HF tokenizers' decoders use it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zflow::text {

struct DecodedChar {
  char32_t code_point;
  size_t length;  // bytes consumed; on an ill-formed sequence, the length of its maximal subpart
  bool valid;
};

// Decodes the character that starts at text[pos] (pos < text.size()).
DecodedChar decode_utf8(std::string_view text, size_t pos);

// The byte offset of the first ill-formed sequence, or nullopt if text is valid UTF-8.
std::optional<size_t> find_invalid_utf8(std::string_view text);

// Throws zflow::Error "[tokenizer] input is not valid UTF-8 at byte N" when text is ill-formed.
void require_valid_utf8(std::string_view text);

// text with every maximal ill-formed subpart replaced by U+FFFD.
std::string repair_utf8(std::string_view text);

void append_utf8(std::string& out, char32_t code_point);

}  // namespace zflow::text
