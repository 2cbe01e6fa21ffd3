// base64 against RFC 4648 §10's test vectors, and the strictness the APIs rely on.
#include <gtest/gtest.h>

#include "server/base64.h"

namespace zflow::server {
namespace {

std::string decode(std::string_view text) {
  const auto bytes = base64_decode(text);
  EXPECT_TRUE(bytes.has_value()) << text;
  return bytes ? std::string(bytes->begin(), bytes->end()) : "";
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(std::string_view(plain)), encoded);
    EXPECT_EQ(decode(encoded), plain);
  }
}

TEST(Base64, EveryByteValueRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(decode(base64_encode(all)), all);
}

TEST(Base64, AcceptsADataUrl) {
  EXPECT_EQ(decode("data:image/png;base64,Zm9v"), "foo");
  EXPECT_FALSE(base64_decode("data:image/png,Zm9v"));  // not base64-encoded
}

TEST(Base64, RejectsWhatIsNotCanonical) {
  for (const char* bad : {"Zm9", "Zm9v=", "Zm=v", "Z===", "Zm9v\n", "Zm 9v",
                          "Zh==", "Zm9=", "====", "Zm9v!A==", "Zg=A"})
    EXPECT_FALSE(base64_decode(bad)) << bad;
}

}  // namespace
}  // namespace zflow::server
