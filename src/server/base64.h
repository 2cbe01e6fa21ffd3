// Standard base64 (RFC 4648 §4, with padding), as JSON APIs carry images.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::server {

std::string base64_encode(std::span<const uint8_t> bytes);
inline std::string base64_encode(std::string_view bytes) {
  return base64_encode({reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()});
}
// nullopt for anything that is not canonical base64 (wrong alphabet, length or padding). A
// leading "data:<mime>;base64," is accepted, as browsers and A1111 clients send it.
std::optional<std::vector<uint8_t>> base64_decode(std::string_view text);

}  // namespace zflow::server
