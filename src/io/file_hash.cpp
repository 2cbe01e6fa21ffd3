#include "io/file_hash.h"

#include <openssl/evp.h>

#include <cstdint>
#include <fstream>
#include <memory>
#include <vector>

#include "core/error.h"

namespace zflow::io {

std::string lora_short_hash(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  ZF_CHECK(in.good(), "[hash] {}: cannot open the file", file.string());
  if (file.extension() == ".safetensors") {
    // An 8-byte little-endian header length, then the JSON header: the hash starts after it.
    uint8_t size[8] = {};
    in.read(reinterpret_cast<char*>(size), sizeof size);
    ZF_CHECK(in.gcount() == 8, "[hash] {}: too short for a safetensors file", file.string());
    uint64_t header = 0;
    for (int i = 7; i >= 0; --i) header = (header << 8) | size[i];
    in.seekg(static_cast<std::streamoff>(8 + header));
    ZF_CHECK(in.good(), "[hash] {}: header length {} runs past the file", file.string(), header);
  }
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    EVP_MD_CTX_free);
  ZF_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1,
           "[hash] cannot start SHA-256");
  std::vector<char> chunk(size_t{1} << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (in.gcount() > 0)
      EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(in.gcount()));
  }
  ZF_CHECK(in.eof(), "[hash] {}: read error", file.string());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (int i = 0; i < 6; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 0x0F];
  }
  return hex;
}

}  // namespace zflow::io
