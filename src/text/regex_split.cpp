#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex_split.h"

#include <pcre2.h>

#include "core/error.h"

namespace zflow::text {

namespace {

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

// Long runs (10 kB of letters, or of spaces for \s+(?!\S)) need more JIT stack than the
// 32 kB default; the maximum is address space reserved per split() call, touched as needed.
constexpr size_t kJitStackStart = 32 * 1024;
constexpr size_t kJitStackMax = 4 * 1024 * 1024;

struct MatchScratch {
  pcre2_match_data* match;
  pcre2_match_context* context;
  pcre2_jit_stack* stack;

  explicit MatchScratch(const pcre2_code* code)
      : match(pcre2_match_data_create_from_pattern(code, nullptr)),
        context(pcre2_match_context_create(nullptr)),
        stack(pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr)) {
    if (!match || !context || !stack) fail("[tokenizer] out of memory for a regex match");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~MatchScratch() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(match);
  }
  MatchScratch(const MatchScratch&) = delete;
  MatchScratch& operator=(const MatchScratch&) = delete;
};

}  // namespace

struct RegexSplit::Compiled {
  pcre2_code* code = nullptr;
  ~Compiled() { pcre2_code_free(code); }
};

RegexSplit::RegexSplit(const std::string& pattern, SplitBehavior behavior, bool invert)
    : pattern_(pattern), behavior_(behavior), invert_(invert), compiled_(new Compiled) {
  int error = 0;
  PCRE2_SIZE offset = 0;
  compiled_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                  PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!compiled_->code) {
    fail("[tokenizer] split regex does not compile at offset {}: {} (pattern: {})", offset,
         pcre2_message(error), pattern);
  }
  // Without JIT (an unsupported CPU), PCRE2's interpreter gives the same matches, slower.
  pcre2_jit_compile(compiled_->code, PCRE2_JIT_COMPLETE);
}

RegexSplit::~RegexSplit() = default;
RegexSplit::RegexSplit(RegexSplit&&) noexcept = default;
RegexSplit& RegexSplit::operator=(RegexSplit&&) noexcept = default;

void RegexSplit::split(const std::vector<std::string_view>& inputs,
                       std::vector<std::string_view>& out) const {
  MatchScratch scratch(compiled_->code);
  for (const std::string_view text : inputs) {
    // A stretch of text is kept when it is a delimiter under Isolated, or a non-delimiter.
    const auto emit = [&](size_t begin, size_t end, bool matched) {
      if (begin == end) return;
      const bool delimiter = matched != invert_;
      if (delimiter && behavior_ == SplitBehavior::Removed) return;
      out.push_back(text.substr(begin, end - begin));
    };
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    size_t gap_start = 0;
    size_t search_from = 0;
    while (search_from < text.size()) {
      const int rc = pcre2_match(compiled_->code, subject, text.size(), search_from,
                                 PCRE2_NO_UTF_CHECK, scratch.match, scratch.context);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        fail("[tokenizer] split regex failed: {} (pattern: {})", pcre2_message(rc), pattern_);
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.match);
      const size_t begin = ovector[0];
      const size_t end = ovector[1];
      if (begin == end) {
        // An empty match delimits nothing: step over one character and search again.
        search_from = end + 1;
        while (search_from < text.size() &&
               (static_cast<uint8_t>(text[search_from]) & 0xC0) == 0x80) {
          ++search_from;
        }
        continue;
      }
      emit(gap_start, begin, false);
      emit(begin, end, true);
      gap_start = search_from = end;
    }
    emit(gap_start, text.size(), false);
  }
}

}  // namespace zflow::text
