// The Split pre-tokenizer of HF tokenizers, on PCRE2 (UTF + Unicode properties, JIT-compiled):
// cuts text into pieces at the matches of a regex. HF uses Oniguruma; for the Qwen pattern
// (\p{L}, \p{N}, \s, a lookahead, a case-insensitive group) the two agree, which the golden
// cases check.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

// What happens to the regex matches (the "delimiters"); names follow HF's
// SplitDelimiterBehavior.
enum class SplitBehavior {
  Isolated,  // matches and the text between them both become pieces
  Removed,   // matches are dropped; the text between them becomes pieces
};

class RegexSplit {
 public:
  // invert: the text between matches is the delimiter instead of the matches.
  RegexSplit(const std::string& pattern, SplitBehavior behavior, bool invert);
  ~RegexSplit();
  RegexSplit(RegexSplit&&) noexcept;
  RegexSplit& operator=(RegexSplit&&) noexcept;

  // Appends the non-empty pieces of each input (valid UTF-8) to out, as views into the inputs.
  void split(const std::vector<std::string_view>& inputs, std::vector<std::string_view>& out) const;

  const std::string& pattern() const { return pattern_; }

 private:
  struct Compiled;
  std::string pattern_;
  SplitBehavior behavior_;
  bool invert_;
  std::unique_ptr<Compiled> compiled_;
};

}  // namespace zflow::text
