// Mistral's Tekken tokenizer (FLUX.2-dev) against Hugging Face tokenizers' conversion of it, on
// the real vocabulary and merges (tools/golden/make_mistral_tokenizer.py): ids equal for every
// golden case, decode giving the text back; the FLUX.2-dev prompt (system message, template, left
// padding to 512) equal to what diffusers' Flux2Pipeline feeds its text encoder.
#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"
#include "text/chat_template.h"
#include "text/tekken_tokenizer.h"

namespace zflow {
namespace {

const nlohmann::json& cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(test::fixture("tokenizer/mistral_tokenizer_cases.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::filesystem::path tokenizer_folder() {
  return test::shared_asset("flux2_mistral_tokenizer");
}

const text::BpeTokenizer& tokenizer() {
  static const text::BpeTokenizer t = text::load_tekken_tokenizer(tokenizer_folder());
  return t;
}

TEST(TekkenTokenizer, GoldenIdsAndDecode) {
  ZF_REQUIRE_ASSET(tokenizer_folder() / "vocab.json");
  int checked = 0, failed = 0;
  for (const auto& c : cases().at("cases")) {
    const std::string input = c.at("text");
    const auto ids = tokenizer().encode(input);
    ++checked;
    if (ids != c.at("ids").get<std::vector<int32_t>>()) {
      if (++failed <= 5)
        ADD_FAILURE() << "text " << nlohmann::json(input).dump() << "\n  got      "
                      << nlohmann::json(ids).dump() << "\n  expected " << c.at("ids").dump();
      continue;
    }
    EXPECT_EQ(tokenizer().decode(ids), c.at("decoded").get<std::string>());
  }
  EXPECT_EQ(failed, 0) << "of " << checked << " cases";
  EXPECT_GE(checked, 250);
}

TEST(TekkenTokenizer, SpecialTokensHoldTheFirstThousandIds) {
  ZF_REQUIRE_ASSET(tokenizer_folder() / "vocab.json");
  EXPECT_EQ(tokenizer().token_to_id("<s>"), 1);
  EXPECT_EQ(tokenizer().token_to_id("<pad>"), 11);
  EXPECT_EQ(tokenizer().token_to_id("[SYSTEM_PROMPT]"), 17);
  EXPECT_EQ(tokenizer().encode("[INST]x[/INST]").front(), 3);
  EXPECT_EQ(tokenizer().added_tokens().size(), 1000u);
  EXPECT_EQ(tokenizer().vocab_size(), 131072u);
}

TEST(TekkenTokenizer, Flux2DevPromptMatchesPipeline) {
  ZF_REQUIRE_ASSET(tokenizer_folder() / "vocab.json");
  const size_t max_length = cases().at("max_sequence_length");
  bool truncated = false;
  for (const auto& c : cases().at("dev_cases")) {
    const std::string prompt = c.at("prompt");
    EXPECT_EQ(text::flux2_dev_prompt_text(prompt), c.at("text").get<std::string>());
    const text::PromptTokens tokens =
        text::encode_flux2_dev_prompt(tokenizer(), prompt, max_length);
    EXPECT_EQ(tokens.ids, c.at("ids").get<std::vector<int32_t>>()) << prompt;
    EXPECT_EQ(tokens.attention_length, c.at("attention_length").get<size_t>()) << prompt;
    EXPECT_EQ(tokens.real_ids().front(), 1) << "the real ids start with <s>, after the padding";
    truncated |= tokens.attention_length == max_length;
  }
  EXPECT_TRUE(truncated) << "the fixture should hold a prompt over 512 tokens";
}

TEST(TekkenTokenizer, MissingFilesAreNamed) {
  const auto dir = std::filesystem::temp_directory_path() / "zflow_test_tekken_missing";
  std::filesystem::create_directories(dir);
  const std::string message = test::error_of([&] { text::load_tekken_tokenizer(dir); });
  EXPECT_NE(message.find("vocab.json + merges.txt"), std::string::npos) << message;
  EXPECT_NE(message.find(dir.string()), std::string::npos) << message;
}

}  // namespace
}  // namespace zflow
