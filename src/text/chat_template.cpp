#include "text/chat_template.h"

#include "core/error.h"

namespace zflow::text {

std::string zimage_prompt_text(std::string_view prompt) {
  std::string text = "<|im_start|>user\n";
  text += prompt;
  text += "<|im_end|>\n<|im_start|>assistant\n";
  return text;
}

PromptTokens encode_zimage_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                  size_t max_length) {
  // tokenizer_config.json: "pad_token": "<|endoftext|>".
  const auto pad = tokenizer.token_to_id("<|endoftext|>");
  ZF_CHECK(pad.has_value(),
           "[tokenizer] the Z-Image prompt needs the pad token <|endoftext|>, "
           "which this tokenizer lacks");
  PromptTokens out;
  out.ids = tokenizer.encode(zimage_prompt_text(prompt));
  if (out.ids.size() > max_length) out.ids.resize(max_length);
  out.attention_length = out.ids.size();
  out.ids.resize(max_length, *pad);
  return out;
}

}  // namespace zflow::text
