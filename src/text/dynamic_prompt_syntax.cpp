#include "text/dynamic_prompt_syntax.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <optional>

#include "core/error.h"

namespace zflow::text::dynamic_prompt {

namespace {

using Kind = Node::Kind;

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

bool is_digit(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) != 0;
}

// Variable names as dynamicprompts reads them: a letter, '_' or '-', then letters, digits too.
bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
}

bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}

std::string stripped(std::string_view s) {
  const size_t from = s.find_first_not_of(" \t\n\r\f\v");
  if (from == std::string_view::npos) return {};
  return std::string(s.substr(from, s.find_last_not_of(" \t\n\r\f\v") - from + 1));
}

// One part alone stands for itself, as the library's parser returns a lone command.
Node sequence_of(std::vector<Node> parts) {
  if (parts.size() == 1) return std::move(parts.front());
  return {.kind = Kind::Sequence, .children = std::move(parts)};
}

// What encloses the text being read, which decides what ends it: nothing at the top of a
// prompt (where '#' starts a comment), '|' or '}' inside braces, and "$$" too in a wrapper.
enum class Within { Prompt, Braces, Wrapper };

class Parser {
 public:
  Parser(std::string_view text, std::string where, Mode mode)
      : s_(text), where_(std::move(where)), mode_(mode) {}

  Node parse() { return sequence(Within::Prompt); }

 private:
  bool at(std::string_view token) const { return s_.substr(i_, token.size()) == token; }

  void skip_spaces() {
    while (i_ < s_.size() && is_space(s_[i_])) ++i_;
  }

  Node sequence(Within within) {
    std::vector<Node> parts;
    while (true) {
      if (within == Within::Prompt) skip_comments();
      if (i_ == s_.size() || (within != Within::Prompt && ends_option(within))) break;
      if (at("${")) {
        parts.push_back(variable(within == Within::Prompt));
      } else if (at("%{")) {
        parts.push_back(wrap());
      } else if (at("{")) {
        parts.push_back(variant());
      } else if (auto wildcard = wildcard_at(i_)) {
        parts.push_back(std::move(wildcard->first));
        i_ = wildcard->second;
      } else {
        parts.push_back(text(within));
      }
    }
    return sequence_of(std::move(parts));
  }

  bool ends_option(Within within) const {
    return at("|") || at("}") || (within == Within::Wrapper && at("$$"));
  }

  // Comments at the top of a prompt, where the library's grammar skips them: '#' or "//" to the
  // end of the line, or "/* ... */", each after any spaces; taken only where a part may begin
  // (inside text, "//" and "/*" are text).
  void skip_comments() {
    while (true) {
      size_t j = i_;
      while (j < s_.size() && is_space(s_[j])) ++j;
      const std::string_view rest = s_.substr(j);
      if (rest.starts_with("#") || rest.starts_with("//")) {
        i_ = std::min(s_.size(), s_.find('\n', j));
      } else if (const size_t end = s_.find("*/", j + 2);
                 rest.starts_with("/*") && end != std::string_view::npos) {
        i_ = end + 2;
      } else {
        return;
      }
    }
  }

  // Literal text up to what begins a part or ends the option. At the top of a prompt a comment
  // may split it: the library then joins the pieces on either side with a space.
  Node text(Within within) {
    std::string out;
    while (true) {
      const size_t from = i_;
      while (i_ < s_.size() && !ends_text(within)) ++i_;
      if (!out.empty()) out += ' ';
      out += s_.substr(from, i_ - from);
      if (within != Within::Prompt || !at("#")) break;
      skip_comments();
      if (i_ == s_.size() || ends_text(within)) break;
    }
    return {.kind = Kind::Text, .text = std::move(out)};
  }

  bool ends_text(Within within) const {
    if (at("{") || at("${") || at("%{")) return true;
    if (within == Within::Prompt ? at("#") : ends_option(within)) return true;
    return at("__") && wildcard_at(i_).has_value();
  }

  // ${name}, ${name:default}, and at the top of a prompt ${name=value}, ${name=!value} (drawn
  // once, there) and ${name?=value} (unless already set).
  Node variable(bool may_set) {
    const size_t open = i_;
    i_ += 2;
    skip_spaces();
    ZF_CHECK(i_ < s_.size() && is_name_start(s_[i_]),
             "[prompt] {}: the '${{' at character {} is not followed by a variable name", where_,
             open + 1);
    const size_t name_from = i_;
    while (i_ < s_.size() && is_name_char(s_[i_])) ++i_;
    Node node{.kind = Kind::Variable, .text = std::string(s_.substr(name_from, i_ - name_from))};
    skip_spaces();
    const bool keep = at("?=");
    if (keep || at("=")) {
      ZF_CHECK(may_set,
               "[prompt] {}: variable ${{{}}} is set inside braces at character {}; set it "
               "outside them",
               where_, node.text, open + 1);
      i_ += keep ? 2 : 1;
      node.kind = Kind::SetVariable;
      node.overwrite = !keep;
      node.immediate = at("!");
      if (node.immediate) ++i_;
      skip_spaces();
      node.children.push_back(nested(open, [&] { return sequence(Within::Braces); }));
    } else if (at(":")) {
      ++i_;
      skip_spaces();
      node.children.push_back(nested(open, [&] { return sequence(Within::Braces); }));
    }
    expect_close(open, "${");
    return node;
  }

  // %{wrapper$$inner}: inner put into the wrapper at its first "..." (or ellipsis).
  Node wrap() {
    const size_t open = i_;
    i_ += 2;
    skip_spaces();
    Node node{.kind = Kind::Wrap};
    node.children.push_back(nested(open, [&] { return sequence(Within::Wrapper); }));
    ZF_CHECK(at("$$"),
             "[prompt] {}: the '%{{' at character {} has no '$$' between the wrapper and what it "
             "wraps",
             where_, open + 1);
    i_ += 2;
    skip_spaces();
    node.children.push_back(nested(open, [&] { return sequence(Within::Braces); }));
    expect_close(open, "%{");
    return node;
  }

  Node variant() {
    const size_t open = i_++;
    skip_spaces();
    i_ = sampling_method(i_);
    Node v{.kind = Kind::Variant};
    const bool open_ended = parse_count(v);
    skip_spaces();
    while (true) {
      skip_spaces();
      v.weights.push_back(weight());
      v.children.push_back(nested(open, [&] { return sequence(Within::Braces); }));
      ZF_CHECK(i_ < s_.size(), "[prompt] {}: the '{{' at character {} is never closed", where_,
               open + 1);
      if (s_[i_++] == '}') break;
    }
    if (open_ended) {
      // "N-$$" runs to the number of options written; the library sorts the two if N is past it.
      v.hi = v.children.size();
      if (v.lo > v.hi) std::swap(v.lo, v.hi);
    }
    return v;
  }

  template <class Parse>
  Node nested(size_t open, Parse&& parse) {
    ZF_CHECK(++depth_ <= kMaxDepth, "[prompt] {}: braces nest more than {} deep at character {}",
             where_, kMaxDepth, open + 1);
    Node node = parse();
    --depth_;
    return node;
  }

  void expect_close(size_t open, std::string_view what) {
    ZF_CHECK(i_ < s_.size(), "[prompt] {}: the '{}' at character {} is never closed", where_, what,
             open + 1);
    ZF_CHECK(at("}"), "[prompt] {}: the '{}' at character {} needs a '}}' at character {}", where_,
             what, open + 1, i_ + 1);
    ++i_;
  }

  // A variant's count and separator, "N$$", "N-M$$", "-M$$", "N-$$", then "sep$$" before any
  // brace. True for "N-$$", whose end is the number of options.
  bool parse_count(Node& v) {
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
      ZF_CHECK(!at("$$") && (low.empty() || s_.substr(j, 1) != "$"),
               "[prompt] {}: the count at character {} is not N$$, N-M$$, -M$$ or N-$$", where_,
               i_ + 1);
      return false;
    }
    const auto number = [&](std::string_view d) {
      ZF_CHECK(d.size() <= 6, "[prompt] {}: the count at character {} is too large", where_,
               i_ + 1);
      return static_cast<size_t>(std::stoul(std::string(d)));
    };
    v.lo = low.empty() ? 1 : number(low);
    v.hi = !range ? v.lo : high.empty() ? v.lo : number(high);
    ZF_CHECK(v.lo <= v.hi, "[prompt] {}: the count at character {} runs from {} down to {}", where_,
             i_ + 1, v.lo, v.hi);
    i_ = j + 2;
    const size_t sep_end = s_.find("$$", i_);
    const size_t brace = s_.find_first_of("{}", i_);
    if (sep_end != std::string_view::npos && sep_end < brace) {
      v.separator = std::string(s_.substr(i_, sep_end - i_));
      i_ = sep_end + 2;
    }
    return range && high.empty();
  }

  // An option's weight, a number and "::" ("2::", "0.5::", ".5::"); 1 without one.
  double weight() {
    size_t j = i_;
    const auto digits = [&] {
      const size_t from = j;
      while (j < s_.size() && is_digit(s_[j])) ++j;
      return j - from;
    };
    const size_t whole = digits();
    size_t fraction = 0;
    if (j < s_.size() && s_[j] == '.') {
      ++j;
      fraction = digits();
    }
    if ((whole == 0 && fraction == 0) || s_.substr(j, 2) != "::") return 1.0;
    const double w = std::strtod(std::string(s_.substr(i_, j - i_)).c_str(), nullptr);
    i_ = j + 2;
    return w;
  }

  // A prefix naming how to sample a variant or wildcard: '!' combinatorially, '~' at random, '@'
  // in turn. Only the mode's own is taken (in random mode '!' too, which dynamicprompts samples
  // at random there), so a prefix never changes what it stands for.
  size_t sampling_method(size_t at) const {
    if (at == s_.size() || (s_[at] != '!' && s_[at] != '~' && s_[at] != '@')) return at;
    const char method = s_[at];
    ZF_CHECK(method == '!' || (method == '~' && mode_ == Mode::Random),
             "[prompt] {}: the sampling method '{}' at character {} is not supported in {} mode",
             where_, method, at + 1, mode_ == Mode::Random ? "random" : "combinatorial");
    return at + 1;
  }

  // "__name__" at `at` and where it ends: a name without spaces, braces, bars or parentheses,
  // perhaps made with variables (__colors_${tone}__, __${kind:glazes}__: the variable's value,
  // or the text after ':', or its own name), perhaps binding variables for the wildcard's lines
  // (__name(tone=warm, finish={matte|glossy})__).
  std::optional<std::pair<Node, size_t>> wildcard_at(size_t at) const {
    if (s_.substr(at, 2) != "__") return std::nullopt;
    size_t j = at + 2;
    const bool method =
        j < s_.size() && std::string_view("!~@").find(s_[j]) != std::string_view::npos;
    if (method) ++j;
    std::vector<Node> pieces;
    std::string literal;
    const auto flush = [&] {
      if (!literal.empty()) pieces.push_back({.kind = Kind::Text, .text = std::move(literal)});
      literal.clear();
    };
    while (j < s_.size() && s_.substr(j, 2) != "__") {
      if (s_.substr(j, 2) == "${") {
        const size_t close = s_.find('}', j);
        if (close == std::string_view::npos) return std::nullopt;
        const std::string_view inside = s_.substr(j + 2, close - j - 2);
        const size_t colon = inside.find(':');
        const std::string name = stripped(inside.substr(0, colon));
        if (name.empty() || !is_name_start(name[0]) ||
            name.find_first_of(" \t\n\r{") != std::string::npos)
          return std::nullopt;
        flush();
        Node fallback{
            .kind = Kind::Text,
            .text = colon == std::string_view::npos ? name : stripped(inside.substr(colon + 1))};
        pieces.push_back({.kind = Kind::Variable, .text = name, .children = {std::move(fallback)}});
        j = close + 1;
        continue;
      }
      const char c = s_[j];
      if (is_space(c) || std::string_view("{}|()$#%").find(c) != std::string_view::npos) break;
      literal += c;
      ++j;
    }
    flush();
    if (pieces.empty()) return std::nullopt;
    Node node{.kind = Kind::Wildcard, .children = {sequence_of(std::move(pieces))}};
    size_t k = j;
    while (k < s_.size() && is_space(s_[k])) ++k;
    std::string_view spec;
    if (k < s_.size() && s_[k] == '(') {
      const size_t close = s_.find(')', k);
      if (close == std::string_view::npos || close == k + 1) return std::nullopt;
      spec = s_.substr(k + 1, close - k - 1);
      j = close + 1;
    }
    if (s_.substr(j, 2) != "__") return std::nullopt;
    if (method) sampling_method(at + 2);
    if (!spec.empty()) node.bindings = bindings(spec, at);
    return std::pair{std::move(node), j + 2};
  }

  // "k=v, k2=v2": each value a template of its own, as the library splits and parses them.
  std::vector<std::pair<std::string, Node>> bindings(std::string_view spec, size_t at) const {
    std::vector<std::pair<std::string, Node>> out;
    size_t from = 0;
    while (from <= spec.size()) {
      const size_t comma = std::min(spec.find(',', from), spec.size());
      const std::string_view pair = spec.substr(from, comma - from);
      const size_t equals = std::min(pair.find('='), pair.size());
      const std::string key = stripped(pair.substr(0, equals));
      ZF_CHECK(!key.empty(),
               "[prompt] {}: the wildcard at character {} binds a variable with no name", where_,
               at + 1);
      const std::string value = stripped(pair.substr(std::min(equals + 1, pair.size())));
      out.emplace_back(key, Parser(value,
                                   fmt::format("{}, variable {} of the wildcard at character {}",
                                               where_, key, at + 1),
                                   mode_)
                                .parse());
      from = comma + 1;
    }
    return out;
  }

  static constexpr int kMaxDepth = 64;
  std::string_view s_;
  std::string where_;
  Mode mode_;
  size_t i_ = 0;
  int depth_ = 0;
};

}  // namespace

Node parse(std::string_view text, std::string where, Mode mode) {
  return Parser(text, std::move(where), mode).parse();
}

}  // namespace zflow::text::dynamic_prompt
