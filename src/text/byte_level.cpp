#include "text/byte_level.h"

#include "text/utf8.h"

namespace zflow::text {

namespace {

bool maps_to_itself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

}  // namespace

ByteLevelAlphabet::ByteLevelAlphabet() {
  bytes_.fill(-1);
  char32_t next_shifted = 0x100;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = maps_to_itself(b) ? static_cast<char32_t>(b) : next_shifted++;
    append_utf8(symbols_[b], cp);
    bytes_[cp] = static_cast<int16_t>(b);
  }
}

std::optional<uint8_t> ByteLevelAlphabet::byte_of(char32_t cp) const {
  if (cp >= bytes_.size() || bytes_[cp] < 0) return std::nullopt;
  return static_cast<uint8_t>(bytes_[cp]);
}

const ByteLevelAlphabet& byte_level_alphabet() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

}  // namespace zflow::text
