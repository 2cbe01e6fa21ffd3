// The tokenizer a llama.cpp GGUF carries, against Hugging Face `tokenizers` built from the same
// vocabulary (a 1000-token slice of the real Qwen3 one with every merge among it), added tokens,
// NFC normaliser and Qwen2 split (tools/golden/make_gguf_tokenizer.py). Ids must be equal.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "test_util.h"
#include "text/gguf_tokenizer.h"

namespace zflow::text {
namespace {

const auto kFile = test::fixture("gguf/qwen3_tokenizer_subset.gguf");

TEST(GgufTokenizer, EqualsHuggingFaceOnTheSameVocabulary) {
  const io::GgufFile file = io::GgufFile::open(kFile);
  ASSERT_TRUE(gguf_has_tokenizer(file.header()));
  const BpeTokenizer tok = bpe_tokenizer_from_gguf(file.header(), kFile.string());
  std::ifstream in(test::fixture("gguf/qwen3_tokenizer_subset_cases.json"));
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases["cases"].size(), 18u);
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int32_t>>()) << text;
  }
  EXPECT_EQ(tok.token_to_id("<|im_start|>"), 1000);
  EXPECT_EQ(tok.decode(tok.encode("a red fox")), "a red fox");
}

// A Mistral GGUF's Tekken tokenizer (pre "tekken": no NFC, Tekken's split, whole-token lookups,
// the 1000 control tokens as specials), against tokenizers' Tekken conversion of the same slice
// of the real vocabulary (tools/golden/make_mistral_gguf.py).
TEST(GgufTokenizer, TekkenEqualsHuggingFaceOnTheSameVocabulary) {
  const auto file_path = test::fixture("gguf/mistral_tiny_llamacpp_weights.gguf");
  const io::GgufFile file = io::GgufFile::open(file_path);
  const BpeTokenizer tok = bpe_tokenizer_from_gguf(file.header(), file_path.string());
  std::ifstream in(test::fixture("gguf/mistral_tiny_llamacpp_tokenizer_cases.json"));
  const auto cases = nlohmann::json::parse(in);
  ASSERT_GE(cases["cases"].size(), 7u);
  for (const auto& c : cases["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok.encode(text), c["ids"].get<std::vector<int32_t>>()) << text;
  }
  EXPECT_EQ(tok.token_to_id("[SYSTEM_PROMPT]"), 17);
  EXPECT_EQ(tok.added_tokens().size(), 1000u);
}

TEST(GgufTokenizer, NamesWhatItCannotRead) {
  io::GgufHeader h;
  EXPECT_FALSE(gguf_has_tokenizer(h));
  const auto error = [&] {
    try {
      bpe_tokenizer_from_gguf(h, "x.gguf");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error().find("x.gguf: GGUF key tokenizer.ggml.model is missing"), std::string::npos);
  h.metadata.emplace_back("tokenizer.ggml.model", io::GgufValue::of_string("llama"));
  EXPECT_NE(error().find("'llama'"), std::string::npos) << error();
  h.metadata[0].second = io::GgufValue::of_string("gpt2");
  h.metadata.emplace_back("tokenizer.ggml.pre", io::GgufValue::of_string("llama3"));
  EXPECT_NE(error().find("tokenizer.ggml.pre is 'llama3'"), std::string::npos) << error();
}

}  // namespace
}  // namespace zflow::text
