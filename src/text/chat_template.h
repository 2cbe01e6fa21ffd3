// The chat-template prompts of the pipelines whose text encoder is a chat LLM (Qwen3, Mistral).
// Z-Image: diffusers' ZImagePipeline._encode_prompt:
//   apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
//                       add_generation_prompt=True, enable_thinking=True)
//   tokenizer(text, padding="max_length", max_length=512, truncation=True)
// Qwen3's chat template adds "<think>\n\n</think>\n\n" only when enable_thinking is false, so
// with enable_thinking=True (the pipeline's choice) the text is exactly
//   "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n".
// The pipeline then keeps the tokens whose attention mask is 1 (the first attention_length).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "text/bpe_tokenizer.h"

namespace zflow::text {

// ZImagePipeline's max_sequence_length default; it counts the template tokens too.
inline constexpr size_t kZImageMaxSequenceLength = 512;

struct PromptTokens {
  std::vector<int32_t> ids;  // max_length ids: the tokens and the pad ids, on the pad side
  size_t attention_length;   // how many of ids are real tokens (attention mask 1)
  bool left_padded = false;  // the pad ids come first (Mistral's processor), else last (Qwen)

  std::span<const int32_t> real_ids() const {
    return {ids.data() + (left_padded ? ids.size() - attention_length : 0), attention_length};
  }
};

// The chat-template text for one prompt.
std::string zimage_prompt_text(std::string_view prompt);

// Template, tokenize, truncate on the right to max_length and pad with <|endoftext|> (Qwen's
// pad token), as the pipeline's tokenizer call does. No BOS: Qwen tokenizers add none.
PromptTokens encode_zimage_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                  size_t max_length = kZImageMaxSequenceLength);

// Z-Image Omni (diffusers ZImageOmniPipeline._encode_prompt): with n >= 1 condition images the
// prompt becomes n + 2 segments, each tokenized on its own as above:
//   "<|im_start|>user\n<|vision_start|>", then n - 1 times "<|vision_end|><|vision_start|>",
//   "<|vision_end|>" + prompt + "<|im_end|>\n<|im_start|>assistant\n<|vision_start|>",
//   "<|vision_end|><|im_end|>"
// (segment j's end is where image j sits; the text encoder reads only the text). Without
// images, the one Z-Image prompt text.
std::vector<std::string> zimage_omni_prompt_texts(std::string_view prompt, size_t images);
std::vector<PromptTokens> encode_zimage_omni_prompt(const BpeTokenizer& tokenizer,
                                                    std::string_view prompt, size_t images,
                                                    size_t max_length = kZImageMaxSequenceLength);

// FLUX.2 klein (diffusers Flux2KleinPipeline._get_qwen3_prompt_embeds) uses the same template
// with enable_thinking=False, which closes an empty think block:
//   "<|im_start|>user\n" + prompt + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
// and the same tokenizer call; the pipeline feeds all max_length ids, padding included, to the
// text encoder (attention mask 0 on the padding).
inline constexpr size_t kFlux2KleinMaxSequenceLength = 512;
std::string flux2_klein_prompt_text(std::string_view prompt);
PromptTokens encode_flux2_klein_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                       size_t max_length = kFlux2KleinMaxSequenceLength);

// FLUX.2-dev (diffusers Flux2Pipeline._get_mistral_3_small_prompt_embeds; BFL's
// text_encoder.py): "[IMG]" is removed from the prompt, which becomes the user message after
// BFL's system message, rendered by Mistral-Small-3.1's chat template without a generation
// prompt (facts: flux.md section 3.3):
//   "<s>[SYSTEM_PROMPT]" + system + "[/SYSTEM_PROMPT][INST]" + prompt + "[/INST]"
// then tokenized, truncated on the right to max_length and padded with <pad> on the LEFT, the
// Mistral processor's padding side; the pipeline feeds all max_length ids to the text encoder
// with the attention mask.
inline constexpr size_t kFlux2DevMaxSequenceLength = 512;
extern const std::string_view kFlux2SystemMessage;
std::string flux2_dev_prompt_text(std::string_view prompt);
PromptTokens encode_flux2_dev_prompt(const BpeTokenizer& tokenizer, std::string_view prompt,
                                     size_t max_length = kFlux2DevMaxSequenceLength);

}  // namespace zflow::text
