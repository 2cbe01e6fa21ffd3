// Added tokens (HF "added_tokens": specials like <|im_start|> and extra words like <think>)
// are cut out of the input before normalization and BPE, the way HF tokenizers'
// AddedVocabulary does it: leftmost-longest matching, then the lstrip / rstrip / single_word
// rules of each token. Tokens marked normalized are matched a second time, on the normalized
// text of the stretches between the first matches.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;      // skipped by decode(..., skip_special = true)
  bool lstrip = false;       // the match swallows the whitespace to its left
  bool rstrip = false;       // the match swallows the whitespace to its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched on normalized text rather than on the raw input
};

// A stretch of text: either an added token (id >= 0) or plain text for the BPE (id = -1).
struct Segment {
  std::string_view text;
  int32_t id = -1;
};

class AddedTokenMatcher {
 public:
  AddedTokenMatcher() = default;
  // Only the tokens whose `normalized` flag equals the given value take part.
  AddedTokenMatcher(const std::vector<AddedToken>& tokens, bool normalized);

  bool empty() const { return tokens_.empty(); }
  // Appends the segments of text to out, in order; plain segments are never empty.
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  std::vector<AddedToken> tokens_;
  std::vector<std::vector<size_t>> by_first_byte_;  // [256] -> token indices, longest first
};

}  // namespace zflow::text
