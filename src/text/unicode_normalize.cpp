#include "text/unicode_normalize.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"
#include "text/utf8.h"

namespace zflow::text {

std::string nfc(std::string_view text) {
  bool ascii = true;
  for (const char c : text) ascii &= static_cast<unsigned char>(c) < 0x80;
  if (ascii) return std::string(text);

  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                   static_cast<utf8proc_ssize_t>(text.size()), &mapped,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (length < 0) fail("[tokenizer] NFC normalization failed: {}", utf8proc_errmsg(length));
  return std::string(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
}

namespace {

// The Unicode White_Space property (what HF's Oniguruma \s matches).
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

}  // namespace

std::string collapse_whitespace(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_run = false;
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    if (is_white_space(c.code_point)) {
      if (!in_run) out.push_back(' ');
      in_run = true;
    } else {
      out.append(text.substr(pos, c.length));
      in_run = false;
    }
    pos += c.length;
  }
  return out;
}

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const DecodedChar c = decode_utf8(text, pos);
    pos += c.length;
    if (c.code_point < 0x80) {
      out.push_back(static_cast<char>(
          c.code_point >= 'A' && c.code_point <= 'Z' ? c.code_point + ('a' - 'A') : c.code_point));
    } else if (c.code_point == 0x130) {
      // The one unconditional multi-character lower-case mapping (SpecialCasing.txt).
      out.append("i\xCC\x87");
    } else {
      append_utf8(out, static_cast<char32_t>(
                           utf8proc_tolower(static_cast<utf8proc_int32_t>(c.code_point))));
    }
  }
  return out;
}

}  // namespace zflow::text
