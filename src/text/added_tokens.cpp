#include "text/added_tokens.h"

#include <utf8proc.h>

#include <algorithm>

#include "text/utf8.h"

namespace zflow::text {

namespace {

// Rust's char::is_whitespace (the Unicode White_Space property), which HF uses for
// lstrip / rstrip.
bool is_white_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// HF's word character for single_word: Rust's char::is_alphanumeric or '_'. Approximated by the
// general categories L* and N* (Rust's Alphabetic also takes a few combining marks).
bool is_word_char(char32_t c) {
  if (c == '_') return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
      return true;
    default:
      return false;
  }
}

// The start of the last character of text[0, end) (end > 0, valid UTF-8).
size_t previous_char_start(std::string_view text, size_t end) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

size_t strip_left(std::string_view text, size_t start) {
  while (start > 0) {
    const size_t prev = previous_char_start(text, start);
    if (!is_white_space(decode_utf8(text, prev).code_point)) break;
    start = prev;
  }
  return start;
}

size_t strip_right(std::string_view text, size_t end) {
  while (end < text.size()) {
    const DecodedChar c = decode_utf8(text, end);
    if (!is_white_space(c.code_point)) break;
    end += c.length;
  }
  return end;
}

bool is_single_word(std::string_view text, size_t begin, size_t end) {
  if (begin > 0 && is_word_char(decode_utf8(text, previous_char_start(text, begin)).code_point))
    return false;
  return end >= text.size() || !is_word_char(decode_utf8(text, end).code_point);
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized)
    : by_first_byte_(256) {
  for (const AddedToken& token : tokens) {
    if (token.normalized == normalized && !token.content.empty()) tokens_.push_back(token);
  }
  for (size_t i = 0; i < tokens_.size(); ++i) {
    by_first_byte_[static_cast<uint8_t>(tokens_[i].content[0])].push_back(i);
  }
  for (auto& list : by_first_byte_) {
    std::stable_sort(list.begin(), list.end(), [&](size_t a, size_t b) {
      return tokens_[a].content.size() > tokens_[b].content.size();
    });
  }
}

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t plain_start = 0;  // where the text not yet given to a segment begins
  size_t pos = 0;
  while (pos < text.size()) {
    // Leftmost-longest: the first position where any token matches, the longest one there.
    const AddedToken* found = nullptr;
    if (!tokens_.empty()) {
      for (const size_t i : by_first_byte_[static_cast<uint8_t>(text[pos])]) {
        if (text.substr(pos).starts_with(tokens_[i].content)) {
          found = &tokens_[i];
          break;
        }
      }
    }
    if (!found) {
      ++pos;
      continue;
    }
    size_t begin = pos;
    size_t end = pos + found->content.size();
    if (found->single_word && !is_single_word(text, begin, end)) {
      pos = end;  // HF's automaton also moves past a rejected match without trying shorter ones
      continue;
    }
    if (found->lstrip) begin = std::max(strip_left(text, begin), plain_start);
    if (found->rstrip) end = strip_right(text, end);
    if (plain_start < begin) out.push_back({text.substr(plain_start, begin - plain_start), -1});
    out.push_back({text.substr(begin, end - begin), found->id});
    plain_start = pos = end;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace zflow::text
