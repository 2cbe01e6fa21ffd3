// The Z-Image prompt path against diffusers' ZImagePipeline._encode_prompt: the template text,
// the ids with attention mask 1, and the truncation at 512 tokens (golden chat_cases); FLUX.2
// klein's against Flux2KleinPipeline's (klein_chat_cases: all 512 ids, padding included).
#include "text/chat_template.h"
#include "tokenizer_fixture.h"

namespace zflow {
namespace {

TEST(ChatTemplate, ZImageTextMatchesPipeline) {
  for (const auto& c : test::qwen3_cases().at("chat_cases")) {
    EXPECT_EQ(text::zimage_prompt_text(c.at("prompt").get<std::string>()),
              c.at("text").get<std::string>());
  }
}

TEST(ChatTemplate, ZImageIdsMatchPipeline) {
  ZF_REQUIRE_ASSET(test::qwen3_tokenizer_json());
  const size_t max_length = test::qwen3_cases().at("max_sequence_length");
  bool saw_truncation = false;
  for (const auto& c : test::qwen3_cases().at("chat_cases")) {
    const auto tokens = text::encode_zimage_prompt(test::qwen3_tokenizer(),
                                                   c.at("prompt").get<std::string>(), max_length);
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    EXPECT_EQ(tokens.attention_length, c.at("attention_length").get<size_t>());
    EXPECT_EQ(std::vector<int32_t>(tokens.real_ids().begin(), tokens.real_ids().end()), expected);
    ASSERT_EQ(tokens.ids.size(), max_length);
    for (size_t i = tokens.attention_length; i < max_length; ++i) EXPECT_EQ(tokens.ids[i], 151643);
    saw_truncation |= tokens.attention_length == max_length;
  }
  EXPECT_TRUE(saw_truncation) << "the fixture should hold a prompt over 512 tokens";
}

TEST(ChatTemplate, Flux2KleinTextAndIdsMatchPipeline) {
  ZF_REQUIRE_ASSET(test::qwen3_tokenizer_json());
  const size_t max_length = test::qwen3_cases().at("max_sequence_length");
  for (const auto& c : test::qwen3_cases().at("klein_chat_cases")) {
    const std::string prompt = c.at("prompt").get<std::string>();
    EXPECT_EQ(text::flux2_klein_prompt_text(prompt), c.at("text").get<std::string>());
    const auto tokens =
        text::encode_flux2_klein_prompt(test::qwen3_tokenizer(), prompt, max_length);
    EXPECT_EQ(tokens.ids, c.at("ids").get<std::vector<int32_t>>()) << prompt;
    EXPECT_EQ(tokens.attention_length, c.at("attention_length").get<size_t>()) << prompt;
  }
}

TEST(ChatTemplate, EmptyPromptIsEightTokens) {
  ZF_REQUIRE_ASSET(test::qwen3_tokenizer_json());
  // facts §3.3: <|im_start|> user \n <|im_end|> \n <|im_start|> assistant \n
  const auto tokens = text::encode_zimage_prompt(test::qwen3_tokenizer(), "");
  EXPECT_EQ(std::vector<int32_t>(tokens.real_ids().begin(), tokens.real_ids().end()),
            (std::vector<int32_t>{151644, 872, 198, 151645, 198, 151644, 77091, 198}));
}

TEST(ChatTemplate, ZImageOmniSegmentsAroundTheImages) {
  ZF_REQUIRE_ASSET(test::qwen3_tokenizer_json());
  // The same ids as above for the template pieces; <|vision_start|> 151652, <|vision_end|>
  // 151653 (tokenizer.json's added tokens), two images, an empty prompt.
  const auto segments = text::encode_zimage_omni_prompt(test::qwen3_tokenizer(), "", 2);
  const std::vector<std::vector<int32_t>> want = {{151644, 872, 198, 151652},
                                                  {151653, 151652},
                                                  {151653, 151645, 198, 151644, 77091, 198, 151652},
                                                  {151653, 151645}};
  ASSERT_EQ(segments.size(), want.size());
  for (size_t j = 0; j < want.size(); ++j)
    EXPECT_EQ(std::vector<int32_t>(segments[j].real_ids().begin(), segments[j].real_ids().end()),
              want[j]);
  // Without images: the Z-Image prompt.
  EXPECT_EQ(text::zimage_omni_prompt_texts("a cat", 0),
            std::vector<std::string>{text::zimage_prompt_text("a cat")});
}

}  // namespace
}  // namespace zflow
