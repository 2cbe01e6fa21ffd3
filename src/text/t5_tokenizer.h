// The T5 tokenizer as FLUX.1 runs it (diffusers: transformers' T5TokenizerFast from
// tokenizer.json; BFL: the slow T5Tokenizer, legacy=True, which runs libsentencepiece as this
// class does, though that is not checked here): a SentencePiece unigram model
// (spiece.model, read by libsentencepiece) plus 100 sentinel tokens <extra_id_0..99> appended
// after the 32000 pieces in reverse order (<extra_id_0> = 32099).
//
// What the fast tokenizer does beyond raw SentencePiece, and how this class matches it:
//  * the special tokens (<pad>, </s>, <unk>, <extra_id_N>) are cut out of the raw text first
//    and each stretch between them is encoded on its own, so every stretch gets its own "▁"
//    prefix ("a<extra_id_0>b" -> ▁ a <extra_id_0> ▁ b), as legacy=True does;
//  * whitespace: the fast normalizer strips only on the right and folds runs of spaces into one
//    "▁", which SentencePiece's remove_extra_whitespaces gives as well (leading runs included);
//  * runs of unknown characters become one <unk> (fuse_unk), as SentencePiece does.
// Known divergences from the fast tokenizer, rare in prompts (tests/text/test_t5_tokenizer.cpp
// lists them): HF's Unigram breaks ties between equal-score segmentations differently
// ("!!!!..." runs), and its grapheme-wise Precompiled normalizer treats U+0085 and stacked
// combining marks differently from SentencePiece's longest-match normalizer.
// encode_padded() is the pipeline call: tokenizer(text, padding="max_length",
// max_length=L, truncation=True), i.e. the pieces cut to L-1, then </s>, then <pad> up to L.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "text/added_tokens.h"

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace zflow::text {

inline constexpr int32_t kT5PadId = 0;
inline constexpr int32_t kT5EosId = 1;
inline constexpr int32_t kT5UnkId = 2;
inline constexpr int kT5ExtraIds = 100;
// FLUX.1's T5 sequence lengths: dev, Kontext, Canny/Depth and Redux-dev use 512, schnell 256.
inline constexpr int kT5DevMaxLength = 512;
inline constexpr int kT5SchnellMaxLength = 256;

class T5Tokenizer {
 public:
  // `path` is spiece.model or a folder holding one (a model folder's tokenizer_2/ subfolder is
  // looked into as well). Throws zflow::Error naming the file when it is missing or unreadable.
  static T5Tokenizer load(const std::filesystem::path& path);

  ~T5Tokenizer();
  T5Tokenizer(T5Tokenizer&&) noexcept;
  T5Tokenizer& operator=(T5Tokenizer&&) noexcept;

  // The ids of text without </s> or padding. text must be valid UTF-8. Thread-safe.
  std::vector<int32_t> encode(std::string_view text) const;
  // encode(text) cut to max_length - 1, then </s>, then <pad> up to max_length (max_length >= 1).
  std::vector<int32_t> encode_padded(std::string_view text, int max_length) const;

  // 32000 pieces + 100 sentinels.
  size_t vocab_size() const;

 private:
  explicit T5Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp);

  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::vector<AddedToken> specials_;
  AddedTokenMatcher matcher_;
};

}  // namespace zflow::text
