#include "text/utf8.h"

#include "core/error.h"

namespace zflow::text {

namespace {

// Unicode 15, Table 3-7 (well-formed UTF-8 byte sequences): the allowed range of the second
// byte depends on the lead byte; every later byte is 80..BF.
struct LeadRule {
  int length;
  uint8_t second_low, second_high;
};

std::optional<LeadRule> lead_rule(uint8_t lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return LeadRule{2, 0x80, 0xBF};
  if (lead == 0xE0) return LeadRule{3, 0xA0, 0xBF};
  if (lead == 0xED) return LeadRule{3, 0x80, 0x9F};  // excludes the surrogates D800..DFFF
  if (lead >= 0xE1 && lead <= 0xEF) return LeadRule{3, 0x80, 0xBF};
  if (lead == 0xF0) return LeadRule{4, 0x90, 0xBF};
  if (lead == 0xF4) return LeadRule{4, 0x80, 0x8F};  // nothing past U+10FFFF
  if (lead >= 0xF1 && lead <= 0xF3) return LeadRule{4, 0x80, 0xBF};
  return std::nullopt;
}

}  // namespace

DecodedChar decode_utf8(std::string_view text, size_t pos) {
  const auto lead = static_cast<uint8_t>(text[pos]);
  if (lead < 0x80) return {lead, 1, true};
  const auto rule = lead_rule(lead);
  if (!rule) return {0xFFFD, 1, false};
  char32_t code_point = lead & (0xFF >> (rule->length + 1));
  for (int i = 1; i < rule->length; ++i) {
    if (pos + i >= text.size()) return {0xFFFD, static_cast<size_t>(i), false};
    const auto byte = static_cast<uint8_t>(text[pos + i]);
    const uint8_t low = i == 1 ? rule->second_low : 0x80;
    const uint8_t high = i == 1 ? rule->second_high : 0xBF;
    if (byte < low || byte > high) return {0xFFFD, static_cast<size_t>(i), false};
    code_point = (code_point << 6) | (byte & 0x3F);
  }
  return {code_point, static_cast<size_t>(rule->length), true};
}

std::optional<size_t> find_invalid_utf8(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const DecodedChar c = decode_utf8(text, pos);
    if (!c.valid) return pos;
    pos += c.length;
  }
  return std::nullopt;
}

void require_valid_utf8(std::string_view text) {
  if (const auto bad = find_invalid_utf8(text)) {
    fail("[tokenizer] input is not valid UTF-8 at byte {} (0x{:02X})", *bad,
         static_cast<uint8_t>(text[*bad]));
  }
}

std::string repair_utf8(std::string_view text) {
  if (!find_invalid_utf8(text)) return std::string(text);
  std::string out;
  out.reserve(text.size() + 8);
  size_t pos = 0;
  while (pos < text.size()) {
    const DecodedChar c = decode_utf8(text, pos);
    if (c.valid) {
      out.append(text.substr(pos, c.length));
    } else {
      append_utf8(out, 0xFFFD);
    }
    pos += c.length;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace zflow::text
