// The byte-level alphabet of GPT-2-style BPE (GPT-2's bytes_to_unicode, used unchanged by
// Qwen, CLIP and Mistral's HF files): every byte maps to one printable code point, so that
// any byte string becomes a string of vocabulary symbols. Printable Latin-1 bytes map to
// themselves; the other 68 bytes (controls, space, 0x7F..0xA0, 0xAD) map to U+0100.. in order,
// which is why a space shows as 'Ġ' (U+0120) and a newline as 'Ċ' (U+010A) in vocab files.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace zflow::text {

class ByteLevelAlphabet {
 public:
  ByteLevelAlphabet();

  // The UTF-8 encoding of the symbol for byte b.
  const std::string& symbol(uint8_t b) const { return symbols_[b]; }
  // The byte whose symbol is code point cp, or nullopt if cp is not in the alphabet.
  std::optional<uint8_t> byte_of(char32_t cp) const;

 private:
  std::array<std::string, 256> symbols_;
  std::array<int16_t, 512> bytes_;  // code point (all below 0x144) -> byte, or -1
};

const ByteLevelAlphabet& byte_level_alphabet();

}  // namespace zflow::text
