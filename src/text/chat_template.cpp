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

std::vector<std::string> zimage_omni_prompt_texts(std::string_view prompt, size_t images) {
  if (images == 0) return {zimage_prompt_text(prompt)};
  std::vector<std::string> texts = {"<|im_start|>user\n<|vision_start|>"};
  texts.insert(texts.end(), images - 1, "<|vision_end|><|vision_start|>");
  std::string text = "<|vision_end|>";
  text += prompt;
  text += "<|im_end|>\n<|im_start|>assistant\n<|vision_start|>";
  texts.push_back(std::move(text));
  texts.emplace_back("<|vision_end|><|im_end|>");
  return texts;
}

std::vector<PromptTokens> encode_zimage_omni_prompt(const BpeTokenizer& tokenizer,
                                                    std::string_view prompt, size_t images,
                                                    size_t max_length) {
  std::vector<PromptTokens> segments;
  for (const std::string& text : zimage_omni_prompt_texts(prompt, images))
    segments.push_back(padded_ids(tokenizer, text, max_length, "Z-Image Omni"));
  return segments;
}

std::string flux2_klein_prompt_text(std::string_view prompt) {
  return zimage_prompt_text(prompt) + "<think>\n\n</think>\n\n";
}

PromptTokens encode_flux2_klein_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                       size_t max_length) {
  return padded_ids(tokenizer, flux2_klein_prompt_text(prompt), max_length, "FLUX.2 klein");
}

// BFL's system_messages.py SYSTEM_MESSAGE, with its line break after "object".
const std::string_view kFlux2SystemMessage =
    "You are an AI that reasons about image descriptions. You give structured responses focusing "
    "on object relationships, object\nattribution and actions without speculation.";

std::string flux2_dev_prompt_text(std::string_view prompt) {
  // The processor counts [IMG] tokens against the images given; the pipeline drops them.
  // One left-to-right pass, as Python's str.replace: "[IM[IMG]G]" leaves "[IMG]".
  constexpr std::string_view kImage = "[IMG]";
  std::string user;
  for (size_t i = 0; i < prompt.size();) {
    if (prompt.substr(i, kImage.size()) == kImage) {
      i += kImage.size();
    } else {
      user += prompt[i++];
    }
  }
  std::string text = "<s>[SYSTEM_PROMPT]";
  text += kFlux2SystemMessage;
  text += "[/SYSTEM_PROMPT][INST]";
  text += user;
  text += "[/INST]";
  return text;
}

PromptTokens encode_flux2_dev_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                     size_t max_length) {
  const auto pad = tokenizer.token_to_id("<pad>");
  ZF_CHECK(pad.has_value(),
           "[tokenizer] the FLUX.2-dev prompt needs Mistral's pad token <pad>, which this "
           "tokenizer lacks (is it the Mistral-Small tokenizer?)");
  std::vector<int32_t> ids = tokenizer.encode(flux2_dev_prompt_text(prompt));
  if (ids.size() > max_length) ids.resize(max_length);
  PromptTokens out;
  out.attention_length = ids.size();
  out.left_padded = true;
  out.ids.assign(max_length - ids.size(), *pad);
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  return out;
}

}  // namespace zflow::text
