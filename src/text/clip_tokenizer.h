// The CLIP text tokenizer (FLUX.1's first text encoder, SD's CLIP-L), as transformers'
// CLIPTokenizer runs it on HF tokenizers: NFC, whitespace runs collapsed to one space, lower
// case; CLIP's pre-tokenizer regex (letter runs, single digits, punctuation runs, English
// contractions; whitespace dropped); byte-level BPE whose word-final symbols carry "</w>";
// then <|startoftext|> ... <|endoftext|>, truncated and padded to 77 as FLUX's pipeline asks.
// It is the shared BpeTokenizer with CLIP's options, so there is one BPE.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "text/bpe_tokenizer.h"

namespace zflow::text {

// HF's Oniguruma \s is White_Space; PCRE2's also takes U+180E, so the patterns below spell the
// class out instead of writing \s.
#define ZF_CLIP_WS \
  R"(\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000})"

// CLIP's pre-tokenizer pattern (transformers' CLIPTokenizer), applied to lower-cased text.
inline constexpr std::string_view kClipSplitPattern =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^)" ZF_CLIP_WS
    R"(\p{L}\p{N}]+)";

// The regex of HF's ByteLevel pre-tokenizer (use_regex on), which CLIP runs after its own.
inline constexpr std::string_view kGpt2SplitPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^)" ZF_CLIP_WS R"(\p{L}\p{N}]+|[)" ZF_CLIP_WS
    R"(]+(?![^)" ZF_CLIP_WS R"(])|[)" ZF_CLIP_WS R"(]+)";
#undef ZF_CLIP_WS

// CLIP's context length: BOS + 75 tokens + EOS.
inline constexpr size_t kClipMaxLength = 77;

class ClipTokenizer {
 public:
  // `path` is a folder with vocab.json + merges.txt (transformers' tokenizer folder, ComfyUI's
  // sd1_tokenizer), or a model folder whose tokenizer/ subfolder holds them.
  static ClipTokenizer load(const std::filesystem::path& path);

  // BOS, the ids of text cut to max_length - 2, EOS; then, when pad, pad ids up to max_length.
  // max_length >= 2. text must be valid UTF-8. Thread-safe.
  std::vector<int32_t> encode(std::string_view text, size_t max_length = kClipMaxLength,
                              bool pad = true) const;

  // The text ids alone (no BOS/EOS, no truncation).
  std::vector<int32_t> encode_text(std::string_view text) const { return bpe_.encode(text); }
  std::string decode(std::span<const int32_t> ids, bool skip_special = true) const;

  int32_t bos_id() const { return bos_id_; }
  int32_t eos_id() const { return eos_id_; }
  int32_t pad_id() const { return pad_id_; }
  const BpeTokenizer& bpe() const { return bpe_; }

 private:
  explicit ClipTokenizer(BpeTokenizer bpe);
  BpeTokenizer bpe_;
  int32_t bos_id_;
  int32_t eos_id_;
  int32_t pad_id_;
};

}  // namespace zflow::text
