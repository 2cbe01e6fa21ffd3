#include "text/chat_template.h"

#include "core/error.h"

namespace zflow::text {
namespace {

// tokenizer(text, padding="max_length", max_length, truncation=True) with the Qwen tokenizers'
// pad token (tokenizer_config.json: "pad_token": "<|endoftext|>").
PromptTokens padded_ids(const BpeTokenizer& tokenizer, const std::string& text, size_t max_length,
                        std::string_view pipeline) {
  const auto pad = tokenizer.token_to_id("<|endoftext|>");
  ZF_CHECK(pad.has_value(),
           "[tokenizer] the {} prompt needs the pad token <|endoftext|>, which this tokenizer "
           "lacks",
           pipeline);
  PromptTokens out;
  out.ids = tokenizer.encode(text);
  if (out.ids.size() > max_length) out.ids.resize(max_length);
  out.attention_length = out.ids.size();
  out.ids.resize(max_length, *pad);
  return out;
}

}  // namespace

std::string zimage_prompt_text(std::string_view prompt) {
  std::string text = "<|im_start|>user\n";
  text += prompt;
  text += "<|im_end|>\n<|im_start|>assistant\n";
  return text;
}

PromptTokens encode_zimage_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                  size_t max_length) {
  return padded_ids(tokenizer, zimage_prompt_text(prompt), max_length, "Z-Image");
}

std::string flux2_klein_prompt_text(std::string_view prompt) {
  return zimage_prompt_text(prompt) + "<think>\n\n</think>\n\n";
}

PromptTokens encode_flux2_klein_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                       size_t max_length) {
  return padded_ids(tokenizer, flux2_klein_prompt_text(prompt), max_length, "FLUX.2 klein");
}

}  // namespace zflow::text
