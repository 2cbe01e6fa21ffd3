// Added-token flags (lstrip, rstrip, single_word, normalized), leftmost-longest matching, Split
// with behavior Removed and invert, and merges in the "a b" string form, against HF tokenizers
// on three tiny byte-level BPE files made by tools/golden/make_tokenizer.py. Ids must be equal.
#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"
#include "text/bpe_tokenizer.h"

namespace zflow {
namespace {

TEST(AddedTokens, TinyTokenizersMatchHf) {
  std::ifstream in(test::fixture("tokenizer/tiny_bpe_tokenizer_cases.json"));
  const auto cases = nlohmann::json::parse(in);
  ASSERT_EQ(cases.at("_meta").at("zflow_fixture_format"), "1");
  int checked = 0;
  for (const auto& [variant, list] : cases.at("variants").items()) {
    const auto tokenizer = text::BpeTokenizer::from_tokenizer_json(
        test::fixture("tokenizer/tiny_bpe_" + variant + "_tokenizer.json"));
    for (const auto& c : list) {
      const std::string input = c.at("text");
      EXPECT_EQ(tokenizer.encode(input), c.at("ids").get<std::vector<int32_t>>())
          << variant << ": " << nlohmann::json(input).dump();
      ++checked;
    }
  }
  EXPECT_GE(checked, 150);
}

}  // namespace
}  // namespace zflow
