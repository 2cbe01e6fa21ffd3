#include "text/dynamic_prompt.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <map>
#include <optional>

#include "core/error.h"
#include "core/python_random.h"

namespace zflow::text {

namespace {

enum class Mode { Combinatorial, Random };

struct Part;
using Template = std::vector<Part>;  // its parts' prompts, one after the other

// A piece of a template: literal text, a choice among options, or a wildcard's lines.
struct Part {
  enum class Kind { Text, Variant, Wildcard } kind = Kind::Text;
  std::string text;               // the literal, or the wildcard's name
  std::vector<Template> options;  // a variant's
  std::vector<double> weights;    // its options' ("0.5::"; 1 without one)
  // A variant that takes several different options ({lo-hi$$sep$$...}); one otherwise.
  bool several = false;
  size_t lo = 1, hi = 1;
  std::string separator = ",";

  // Equal in structure, as dynamicprompts compares its commands.
  bool operator==(const Part&) const = default;
};

// Nesting doubles a prompt per level ({2$${2$$...}}): past this it is an error, not a hang.
constexpr size_t kMaxPromptChars = size_t{1} << 16;

std::string joined_prompt(std::string head, std::string_view rest) {
  ZF_CHECK(head.size() + rest.size() <= kMaxPromptChars,
           "[prompt] the template makes a prompt longer than {} characters", kMaxPromptChars);
  return head += rest;
}

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

class Parser {
 public:
  Parser(std::string_view text, std::string where, Mode mode)
      : s_(text), where_(std::move(where)), mode_(mode) {}

  Template parse() { return parse_template(false); }

 private:
  // Text, variants and wildcards up to the end, or inside a variant up to its next '|' or '}'.
  Template parse_template(bool in_variant) {
    Template t;
    std::string text;
    const auto flush = [&] {
      if (!text.empty()) t.push_back({Part::Kind::Text, std::move(text)});
      text.clear();
    };
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (in_variant && (c == '|' || c == '}')) break;
      if (c == '{') {
        flush();
        t.push_back(parse_variant());
      } else if (const auto name = wildcard_at(i_)) {
        flush();
        t.push_back({Part::Kind::Wildcard, *name});
        i_ += name->size() + 4;
      } else {
        text += c;
        ++i_;
      }
    }
    flush();
    return t;
  }

  // "__name__" at `at`: a name without spaces, braces or bars between two "__".
  std::optional<std::string> wildcard_at(size_t at) const {
    if (s_.substr(at, 2) != "__") return std::nullopt;
    const size_t end = s_.find("__", at + 2);
    if (end == std::string_view::npos || end == at + 2) return std::nullopt;
    const std::string_view name = s_.substr(at + 2, end - at - 2);
    for (char c : name)
      if (std::isspace(static_cast<unsigned char>(c)) || c == '{' || c == '}' || c == '|')
        return std::nullopt;
    return std::string(name);
  }

  Part parse_variant() {
    const size_t open = i_++;
    ZF_CHECK(++depth_ <= kMaxDepth, "[prompt] {}: braces nest more than {} deep at character {}",
             where_, kMaxDepth, open + 1);
    Part v{Part::Kind::Variant};
    parse_sampling_method();
    parse_count(v);
    while (true) {
      auto [option, weight] = weighed(parse_template(true));
      v.options.push_back(std::move(option));
      v.weights.push_back(weight);
      ZF_CHECK(i_ < s_.size(), "[prompt] {}: the '{{' at character {} is never closed", where_,
               open + 1);
      if (s_[i_++] == '}') {
        --depth_;
        return v;
      }
    }
  }

  // A variant's count and separator, "N$$", "N-M$$", "-M$$", "N-$$", then "sep$$" before any
  // brace.
  void parse_count(Part& v) {
    size_t j = i_;
    const auto digits = [&] {
      const size_t from = j;
      while (j < s_.size() && is_digit(s_[j])) ++j;
      return s_.substr(from, j - from);
    };
    const std::string_view low = digits();
    const bool range = j < s_.size() && s_[j] == '-';
    if (range) ++j;
    const std::string_view high = range ? digits() : std::string_view{};
    if (s_.substr(j, 2) != "$$" || (low.empty() && high.empty())) {
      ZF_CHECK(s_.substr(i_, 2) != "$$" && (low.empty() || s_.substr(j, 1) != "$"),
               "[prompt] {}: the count at character {} is not N$$, N-M$$, -M$$ or N-$$", where_,
               i_ + 1);
      return;
    }
    const auto number = [&](std::string_view d) {
      ZF_CHECK(d.size() <= 6, "[prompt] {}: the count at character {} is too large", where_,
               i_ + 1);
      return static_cast<size_t>(std::stoul(std::string(d)));
    };
    v.several = true;
    v.lo = low.empty() ? 1 : number(low);
    v.hi = !range ? v.lo : high.empty() ? std::numeric_limits<size_t>::max() : number(high);
    ZF_CHECK(v.lo <= v.hi, "[prompt] {}: the count at character {} runs from {} down to {}", where_,
             i_ + 1, v.lo, v.hi);
    i_ = j + 2;
    const size_t sep_end = s_.find("$$", i_);
    const size_t brace = s_.find_first_of("{}", i_);
    if (sep_end != std::string_view::npos && sep_end < brace) {
      v.separator = std::string(s_.substr(i_, sep_end - i_));
      i_ = sep_end + 2;
    }
  }

  // An option as dynamicprompts reads it: its leading spaces dropped, then a weight "N::".
  static std::pair<Template, double> weighed(Template t) {
    double weight = 1.0;
    if (t.empty() || t.front().kind != Part::Kind::Text) return {std::move(t), weight};
    std::string& text = t.front().text;
    text.erase(0, text.find_first_not_of(" \t\n\r"));
    size_t j = 0;
    while (j < text.size() && (is_digit(text[j]) || text[j] == '.')) ++j;
    if (j > 0 && text.compare(j, 2, "::") == 0 &&
        text.find_first_of("0123456789") < j) {  // a number, not dots alone
      weight = std::strtod(text.substr(0, j).c_str(), nullptr);
      text.erase(0, j + 2);
    }
    if (text.empty()) t.erase(t.begin());
    return {std::move(t), weight};
  }

  // A variant's prefix naming how to sample it: '!' combinatorially, '~' at random, '@' in turn.
  // Only the mode's own is taken (in random mode '!' too, which dynamicprompts samples at random
  // there), so a prefix never changes what it stands for.
  void parse_sampling_method() {
    if (i_ == s_.size() || (s_[i_] != '!' && s_[i_] != '~' && s_[i_] != '@')) return;
    const char method = s_[i_];
    ZF_CHECK(method == '!' || (method == '~' && mode_ == Mode::Random),
             "[prompt] {}: the sampling method '{}' at character {} is not supported in {} mode",
             where_, method, i_ + 1, mode_ == Mode::Random ? "random" : "combinatorial");
    ++i_;
  }

  static constexpr int kMaxDepth = 64;
  std::string_view s_;
  std::string where_;
  Mode mode_;
  size_t i_ = 0;
  int depth_ = 0;
};

// The wildcard files' lines as templates, each file read and parsed once, and the wildcards
// being expanded, so that one which refers back to itself stops with an error.
class WildcardBook {
 public:
  WildcardBook(const WildcardLines& wildcards, Mode mode) : wildcards_(wildcards), mode_(mode) {}

  // `expand(lines)` over the lines of wildcard `name` (blank ones and # comments left out, each
  // once, sorted), with `name` open meanwhile.
  template <class Expand>
  auto expanding(const std::string& name, Expand&& expand) {
    ZF_CHECK(std::find(open_.begin(), open_.end(), name) == open_.end(),
             "[prompt] wildcard __{}__ refers to itself (through {})", name,
             fmt::join(open_, ", "));
    const std::vector<Template>& lines = this->lines(name);
    open_.push_back(name);
    auto out = expand(lines);
    open_.pop_back();
    return out;
  }

 private:
  const std::vector<Template>& lines(const std::string& name) {
    if (const auto it = parsed_.find(name); it != parsed_.end()) return it->second;
    ZF_CHECK(wildcards_, "[prompt] __{}__: no wildcard folder was given", name);
    std::vector<std::string> lines;
    for (std::string line : wildcards_(name)) {
      line.erase(0, line.find_first_not_of(" \t\r"));
      line.erase(line.find_last_not_of(" \t\r") + 1);
      if (!line.empty() && line[0] != '#') lines.push_back(std::move(line));
    }
    ZF_CHECK(!lines.empty(), "[prompt] wildcard __{}__ has no lines", name);
    std::sort(lines.begin(), lines.end());
    lines.erase(std::unique(lines.begin(), lines.end()), lines.end());
    std::vector<Template> options;
    for (const std::string& line : lines)
      options.push_back(
          Parser(line, fmt::format("wildcard __{}__, line '{}'", name, line), mode_).parse());
    return parsed_[name] = std::move(options);
  }

  const WildcardLines& wildcards_;
  const Mode mode_;
  std::map<std::string, std::vector<Template>> parsed_;
  std::vector<std::string> open_;  // the wildcards being expanded, outermost first
};

// {2$$__colors__}, {__colors__}: a variant whose one option is a wildcard alone takes its lines
// as options.
const std::string* lone_wildcard(const Part& variant) {
  if (variant.options.size() != 1 || variant.options[0].size() != 1) return nullptr;
  const Part& only = variant.options[0][0];
  return only.kind == Part::Kind::Wildcard ? &only.text : nullptr;
}

// Every prompt, in the order of dynamicprompts' CombinatorialPromptGenerator.
class Expander {
 public:
  Expander(WildcardBook& book, size_t cap) : book_(book), cap_(cap) {}

  // The prompts of parts [begin, end) of t: each of the first part's with each of the rest's,
  // the first part varying slowest (itertools.product), at most cap_.
  std::vector<std::string> expand(const Template& t, size_t begin = 0) {
    if (begin == t.size()) return {""};
    const std::vector<std::string> head = expand(t[begin]);
    if (head.empty()) return {};
    const std::vector<std::string> tail = expand(t, begin + 1);
    std::vector<std::string> out;
    for (const std::string& h : head)
      for (const std::string& rest : tail) {
        if (out.size() == cap_) return out;
        out.push_back(joined_prompt(h, rest));
      }
    return out;
  }

 private:
  std::vector<std::string> expand(const Part& p) {
    switch (p.kind) {
      case Part::Kind::Text:
        return {p.text};
      case Part::Kind::Wildcard:
        return expand_wildcard(p.text, p);
      case Part::Kind::Variant:
        if (const std::string* name = lone_wildcard(p); name && p.several)
          return expand_wildcard(*name, p);
        return expand_options(p.options, p);
    }
    return {};
  }

  // The wildcard's lines as `p`'s options.
  std::vector<std::string> expand_wildcard(const std::string& name, const Part& p) {
    return book_.expanding(
        name, [&](const std::vector<Template>& lines) { return expand_options(lines, p); });
  }

  // One option's prompts after another's; or for `several`, every ordered choice of k different
  // options (itertools.permutations), k from lo to hi cut to the options, each choice's prompts
  // joined by the separator.
  std::vector<std::string> expand_options(const std::vector<Template>& options, const Part& p) {
    std::vector<std::string> out;
    if (!p.several) {
      for (const Template& option : options)
        for (std::string& prompt : expand(option)) {
          if (out.size() == cap_) return out;
          out.push_back(std::move(prompt));
        }
      return out;
    }
    const size_t hi = std::min(p.hi, options.size());
    for (size_t k = std::min(p.lo, hi); k <= hi && out.size() < cap_; ++k) {
      std::vector<size_t> chosen;
      std::vector<bool> used(options.size(), false);
      permutations(options, p.separator, k, chosen, used, out);
    }
    return out;
  }

  void permutations(const std::vector<Template>& options, const std::string& separator, size_t k,
                    std::vector<size_t>& chosen, std::vector<bool>& used,
                    std::vector<std::string>& out) {
    if (out.size() == cap_) return;
    if (chosen.size() == k) {
      Template joined;
      for (size_t n = 0; n < chosen.size(); ++n) {
        if (n > 0) joined.push_back({Part::Kind::Text, separator});
        Part group{Part::Kind::Variant};
        group.options = {options[chosen[n]]};
        joined.push_back(std::move(group));
      }
      for (std::string& prompt : expand(joined)) {
        if (out.size() == cap_) return;
        out.push_back(std::move(prompt));
      }
      return;
    }
    for (size_t n = 0; n < options.size(); ++n) {
      if (used[n]) continue;
      used[n] = true;
      chosen.push_back(n);
      permutations(options, separator, k, chosen, used, out);
      chosen.pop_back();
      used[n] = false;
    }
  }

  WildcardBook& book_;
  const size_t cap_;
};

// One prompt drawn as dynamicprompts' RandomSampler draws it, draw for draw from the same
// Python Random: parts left to right; a wildcard takes one of its lines (random.choice); a
// variant of several options first draws how many (randint over its count cut to the options),
// then which, one at a time without replacement (random.choices by weight), and only then
// samples the chosen ones, joined by its separator.
class RandomSampler {
 public:
  RandomSampler(WildcardBook& book, PythonRandom& random) : book_(book), random_(random) {}

  std::string sample(const Template& t) {
    std::string out;
    for (const Part& p : t) out = joined_prompt(std::move(out), sample(p));
    return out;
  }

 private:
  std::string sample(const Part& p) {
    switch (p.kind) {
      case Part::Kind::Text:
        return p.text;
      case Part::Kind::Wildcard:
        return book_.expanding(p.text, [&](const std::vector<Template>& lines) {
          return sample(lines[random_.choice(lines.size())]);
        });
      case Part::Kind::Variant:
        if (const std::string* name = lone_wildcard(p))
          return book_.expanding(*name, [&](const std::vector<Template>& lines) {
            return sample_options(lines, std::vector<double>(lines.size(), 1.0), p);
          });
        return sample_options(p.options, p.weights, p);
    }
    return {};
  }

  std::string sample_options(const std::vector<Template>& options, std::vector<double> weights,
                             const Part& p) {
    if (options.size() == 1) {
      // A wildcard's one line that is itself a lone wildcard is taken as a variant again, its
      // count cut to the one line.
      if (options[0].size() == 1 && options[0][0].kind == Part::Kind::Wildcard) {
        Part again = p;
        again.options = options;
        again.weights = weights;
        again.lo = std::min<size_t>(p.lo, 1);
        again.hi = std::min<size_t>(p.hi, 1);
        return sample(again);
      }
      return sample(options[0]);
    }
    const size_t lo = std::min(p.lo, options.size()), hi = std::min(p.hi, options.size());
    const auto count =
        static_cast<size_t>(random_.randint(static_cast<int64_t>(lo), static_cast<int64_t>(hi)));
    std::vector<const Template*> left;
    for (const Template& option : options) left.push_back(&option);
    std::vector<const Template*> chosen;
    for (size_t k = 0; k < count; ++k) {
      const Template* pick = left[random_.choices(weights)];
      chosen.push_back(pick);
      // As dynamicprompts removes it: the first option equal to the pick, and the first weight
      // equal to that option's (not always its own when weights repeat).
      const auto first = static_cast<size_t>(
          std::find_if(left.begin(), left.end(), [&](const Template* o) { return *o == *pick; }) -
          left.begin());
      weights.erase(std::find(weights.begin(), weights.end(), weights[first]));
      left.erase(left.begin() + static_cast<std::ptrdiff_t>(first));
    }
    std::string out;
    for (size_t k = 0; k < chosen.size(); ++k) {
      if (k > 0) out = joined_prompt(std::move(out), p.separator);
      out = joined_prompt(std::move(out), sample(*chosen[k]));
    }
    return out;
  }

  WildcardBook& book_;
  PythonRandom& random_;
};

}  // namespace

std::vector<std::string> expand_dynamic_prompt(std::string_view text,
                                               const WildcardLines& wildcards, size_t max_prompts) {
  const Template t = Parser(text, "prompt", Mode::Combinatorial).parse();
  WildcardBook book(wildcards, Mode::Combinatorial);
  return Expander(book, max_prompts).expand(t);
}

std::vector<std::string> sample_dynamic_prompts(std::string_view text,
                                                const WildcardLines& wildcards, uint64_t seed,
                                                size_t count) {
  const Template t = Parser(text, "prompt", Mode::Random).parse();
  WildcardBook book(wildcards, Mode::Random);
  std::vector<std::string> prompts;
  for (size_t i = 0; i < count; ++i) {
    PythonRandom random(seed + i);
    prompts.push_back(RandomSampler(book, random).sample(t));
  }
  return prompts;
}

}  // namespace zflow::text
