#include "text/dynamic_prompt.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "core/error.h"
#include "core/python_random.h"
#include "text/dynamic_prompt_syntax.h"

namespace zflow::text {

namespace {

using dynamic_prompt::Mode;
using dynamic_prompt::Node;
using Kind = Node::Kind;

// Nesting doubles a prompt per level ({2$${2$$...}}): past this it is an error, not a hang.
constexpr size_t kMaxPromptChars = size_t{1} << 16;
// Combinatorial variants drop the combinations whose options come out alike; past this many
// dropped, a template whose options repeat one another that much is an error, not a hang.
constexpr size_t kMaxWasted = size_t{1} << 18;

std::string joined_prompt(std::string head, std::string_view rest) {
  ZF_CHECK(head.size() + rest.size() <= kMaxPromptChars,
           "[prompt] the template makes a prompt longer than {} characters", kMaxPromptChars);
  return head += rest;
}

// The library's SamplingResult.joined: one part as it is; several joined by the separator, then
// a separator taken off each end where one is (so that empty options leave none dangling).
std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  if (parts.size() == 1) return parts.front();
  std::string out;
  for (size_t k = 0; k < parts.size(); ++k)
    out =
        joined_prompt(k > 0 ? joined_prompt(std::move(out), separator) : std::move(out), parts[k]);
  if (!separator.empty() && out.starts_with(separator)) out.erase(0, separator.size());
  if (!separator.empty() && out.ends_with(separator)) out.erase(out.size() - separator.size());
  return out;
}

// The byte length of a Unicode ellipsis character at `at` (U+2026 and the library's six
// others), 0 if none is there.
size_t ellipsis_at(std::string_view s, size_t at) {
  static constexpr std::string_view kEllipses[] = {"\u1801", "\u2026", "\u22ee", "\u22ef",
                                                   "\u22f0", "\u22f1", "\ufe19"};
  for (std::string_view e : kEllipses)
    if (s.substr(at, e.size()) == e) return e.size();
  return 0;
}

// %{wrapper$$inner}: inner in place of the wrapper's first run of ellipsis characters or of
// three or more dots; after the wrapper if it has none.
std::string wrapped(std::string_view wrapper, std::string_view inner) {
  for (size_t i = 0; i < wrapper.size(); ++i) {
    size_t end = i;
    while (const size_t n = ellipsis_at(wrapper, end)) end += n;
    if (end == i) {
      while (end < wrapper.size() && wrapper[end] == '.') ++end;
      if (end - i < 3) end = i;
    }
    if (end > i)
      return joined_prompt(joined_prompt(std::string(wrapper.substr(0, i)), inner),
                           wrapper.substr(end));
  }
  return joined_prompt(std::string(wrapper), inner);
}

// A wildcard's values as templates, as the library's WildcardManager hands them out: each once
// (a weighted value apart from the same text without a weight), sorted by text.
struct WildcardEntries {
  std::vector<Node> values;
  std::vector<double> weights;
  bool varied_weights = false;  // some value weighs other than the first
  // Each value int(weight) times (indices into `values`), as the library iterates a wildcard in
  // combinatorial mode and makes one into a variant's options.
  std::vector<size_t> repeated;
};

// The wildcards' values, each wildcard read and parsed once.
class WildcardBook {
 public:
  static constexpr double kMaxWeight = 10000;

  WildcardBook(const Wildcards& wildcards, Mode mode) : wildcards_(wildcards), mode_(mode) {}

  const WildcardEntries& entries(const std::string& name) {
    if (const auto it = parsed_.find(name); it != parsed_.end()) return it->second;
    ZF_CHECK(wildcards_, "[prompt] __{}__: no wildcard folder was given", name);
    std::vector<WildcardValue> all = wildcards_(name);
    std::stable_sort(all.begin(), all.end(), [](const WildcardValue& a, const WildcardValue& b) {
      return a.text < b.text;
    });
    // Each value once, the first of equal ones as dict.fromkeys keeps it: equal values share
    // their text, so only the run of that text (in the original order, the sort being stable)
    // is looked through.
    std::vector<WildcardValue> values;
    for (WildcardValue& value : all) {
      bool seen = false;
      for (size_t j = values.size(); j-- > 0 && values[j].text == value.text && !seen;)
        seen = values[j] == value;
      if (!seen) values.push_back(std::move(value));
    }
    ZF_CHECK(!values.empty(), "[prompt] wildcard __{}__ has no values", name);
    WildcardEntries entries;
    for (const WildcardValue& value : values) {
      entries.values.push_back(dynamic_prompt::parse(
          value.text, fmt::format("wildcard __{}__, value '{}'", name, value.text), mode_));
      // Combinatorial mode makes a value int(weight) times; Python would hang on a huge one.
      ZF_CHECK(std::isfinite(value.weight) && value.weight <= kMaxWeight,
               "[prompt] wildcard __{}__: value '{}' weighs {}; a weight up to {} is expected",
               name, value.text, value.weight, kMaxWeight);
      entries.weights.push_back(value.weight);
      entries.varied_weights |= value.weight != values.front().weight;
      for (double k = 1; k <= value.weight; ++k)
        entries.repeated.push_back(entries.values.size() - 1);
    }
    return parsed_[name] = std::move(entries);
  }

 private:
  const Wildcards& wildcards_;
  const Mode mode_;
  std::map<std::string, WildcardEntries> parsed_;
};

// What the generators of one template share.
struct Expansion {
  WildcardBook book;
  PythonRandom* random;           // random mode's draws; null in combinatorial mode
  std::deque<Node> drawn_values;  // immediate variables'
  // Variants made of a wildcard's lines, by name, count and separator: made once, as a big
  // wildcard inside a variant is made again for every prompt of the parts before it.
  std::map<std::tuple<std::string, size_t, size_t, std::string>, Node> wildcard_variants;
  size_t wasted = 0;  // combinations dropped by variants
};

// Where a part of a template is drawn: the variables set there, and what is being drawn around
// it (a variable or wildcard met again inside itself is an error, not endless recursion).
struct Scope {
  Expansion* expansion;
  std::map<std::string, const Node*> variables;
  std::vector<std::string> drawing_variables;
  std::vector<std::string> open_wildcards;  // outermost first
};

// A part's prompts one at a time, as the library's generators make them: in combinatorial mode
// each prompt once and then none; in random mode a new draw each time, forever. A generator keeps
// what it drew when it began (an immediate variable, a wildcard's name) for all its prompts.
class Generator {
 public:
  virtual ~Generator() = default;
  virtual std::optional<std::string> next() = 0;
};
using GeneratorPtr = std::unique_ptr<Generator>;

GeneratorPtr generator(const Node& node, const Scope& scope);

std::string first_prompt(const Node& node, const Scope& scope) {
  std::optional<std::string> prompt = generator(node, scope)->next();
  ZF_CHECK(prompt, "[prompt] a variable's value or a wildcard's name stands for no prompt");
  return std::move(*prompt);
}

// The library's process_variable_assignments: a sequence's ${n=v} bind n for the whole sequence
// (the parts before them too); an immediate value is drawn there, in the scope around the
// sequence, and ${n?=v} keeps a value set around it. `parts` gets the other members.
Scope with_assignments(const Node& sequence, const Scope& outer, std::vector<const Node*>& parts) {
  std::map<std::string, const Node*> set;
  for (const Node& token : sequence.children) {
    if (token.kind != Kind::SetVariable) {
      parts.push_back(&token);
      continue;
    }
    const Node& value = token.children.front();
    if (const auto kept = outer.variables.find(token.text);
        !token.overwrite && kept != outer.variables.end())
      set[token.text] = kept->second;
    else if (token.immediate && value.kind != Kind::Text)
      set[token.text] = &outer.expansion->drawn_values.emplace_back(
          Node{.kind = Kind::Text, .text = first_prompt(value, outer)});
    else
      set[token.text] = &value;
  }
  Scope scope = outer;
  for (const auto& [name, value] : set) scope.variables[name] = value;
  return scope;
}

Scope entering_wildcard(const std::string& name, const Scope& outer) {
  ZF_CHECK(std::find(outer.open_wildcards.begin(), outer.open_wildcards.end(), name) ==
               outer.open_wildcards.end(),
           "[prompt] wildcard __{}__ refers to itself (through {})", name,
           fmt::join(outer.open_wildcards, ", "));
  Scope scope = outer;
  scope.open_wildcards.push_back(name);
  return scope;
}

// The library's wildcard_to_variant: {__name__} and {2$$__name__} choose among the wildcard's
// lines as among written options, the count cut to the lines (the wildcard's own variables are
// not bound there). The made variant, and the scope to draw it in.
std::pair<const Node*, Scope> wildcard_variant(const Node& variant, const Scope& outer) {
  const std::string name = first_prompt(variant.children.front().children.front(), outer);
  Scope scope = entering_wildcard(name, outer);
  Node& made =
      outer.expansion->wildcard_variants[{name, variant.lo, variant.hi, variant.separator}];
  if (made.children.empty()) {
    const WildcardEntries& entries = outer.expansion->book.entries(name);
    std::vector<Node> lines;
    for (size_t k : entries.repeated) lines.push_back(entries.values[k]);
    const size_t n = lines.size();
    made = Node{
        .kind = Kind::Variant,
        .children = std::move(lines),
        .weights = std::vector<double>(n, 1.0),
        .lo = std::min(variant.lo, n),
        .hi = std::min(variant.hi, n),
        .separator = variant.separator,
    };
  }
  return {&made, std::move(scope)};
}

bool is_wildcard_variant(const Node& variant) {
  return variant.children.size() == 1 && variant.children.front().kind == Kind::Wildcard;
}

GeneratorPtr variable_generator(const Node& variable, const Scope& scope) {
  const std::string& name = variable.text;
  const auto set = scope.variables.find(name);
  const Node* value = set != scope.variables.end() ? set->second
                      : variable.children.empty()  ? nullptr
                                                   : &variable.children.front();
  ZF_CHECK(value,
           "[prompt] variable ${{{}}} is not set: set it first (${{{}=...}}) or give it a default "
           "(${{{}:...}})",
           name, name, name);
  ZF_CHECK(std::find(scope.drawing_variables.begin(), scope.drawing_variables.end(), name) ==
               scope.drawing_variables.end(),
           "[prompt] variable ${{{}}} refers to itself", name);
  Scope inner = scope;
  inner.drawing_variables.push_back(name);
  return generator(*value, inner);
}

class Constant final : public Generator {
 public:
  Constant(std::string text, bool forever) : text_(std::move(text)), forever_(forever) {}
  std::optional<std::string> next() override {
    if (done_) return std::nullopt;
    done_ = !forever_;
    return text_;
  }

 private:
  std::string text_;
  bool forever_, done_ = false;
};

// Every combination of the nodes' prompts, the first node's varying slowest (itertools.product),
// each later node's generator made again for each earlier prompt, as the library makes them.
class Product {
 public:
  Product(std::vector<const Node*> nodes, Scope scope)
      : nodes_(std::move(nodes)), scope_(std::move(scope)) {}

  std::optional<std::vector<std::string>> next() {
    if (done_) return std::nullopt;
    size_t restart = 0;
    if (!generators_.empty()) {
      restart = nodes_.size();
      while (restart > 0) {
        if (auto prompt = generators_[restart - 1]->next()) {
          values_[restart - 1] = std::move(*prompt);
          break;
        }
        --restart;
      }
      if (restart == 0) return done_ = true, std::nullopt;
    }
    generators_.resize(restart);
    values_.resize(nodes_.size());
    for (size_t k = restart; k < nodes_.size(); ++k) {
      generators_.push_back(generator(*nodes_[k], scope_));
      std::optional<std::string> prompt = generators_.back()->next();
      if (!prompt) return done_ = true, std::nullopt;
      values_[k] = std::move(*prompt);
    }
    if (nodes_.empty()) done_ = true;
    return values_;
  }

 private:
  std::vector<const Node*> nodes_;
  Scope scope_;
  std::vector<GeneratorPtr> generators_;
  std::vector<std::string> values_;
  bool done_ = false;
};

// Its members' prompts one after the other, its variables set first.
class SequenceGenerator final : public Generator {
 public:
  SequenceGenerator(const Node& sequence, Scope scope)
      : sequence_(sequence), outer_(std::move(scope)) {}

  std::optional<std::string> next() override {
    if (!started_) start();
    std::vector<std::string> parts;
    if (product_) {
      std::optional<std::vector<std::string>> combination = product_->next();
      if (!combination) return std::nullopt;
      parts = std::move(*combination);
    } else {
      for (const GeneratorPtr& g : generators_) parts.push_back(*g->next());
    }
    std::string out;
    for (const std::string& part : parts) out = joined_prompt(std::move(out), part);
    return out;
  }

 private:
  void start() {
    started_ = true;
    std::vector<const Node*> parts;
    Scope scope = with_assignments(sequence_, outer_, parts);
    if (scope.expansion->random) {
      for (const Node* part : parts) generators_.push_back(generator(*part, scope));
    } else {
      product_.emplace(std::move(parts), std::move(scope));
    }
  }

  const Node& sequence_;
  Scope outer_;
  bool started_ = false;
  std::optional<Product> product_;        // combinatorial mode
  std::vector<GeneratorPtr> generators_;  // random mode
};

// The k-long arrangements of the options, no two equal (as the library compares them), in the
// order of its get_value_combinations.
class Arrangements {
 public:
  Arrangements(const std::vector<Node>& options, size_t k) : k_(k) {
    Level all;
    for (const Node& option : options) all.left.push_back(&option);
    // Each level leaves one distinct option fewer: with too few, none is k long, and looking
    // through the shorter ones would take factorial time for nothing. (Counting them takes
    // quadratic time, which a wildcard of many lines in {__name__} need not pay.)
    if (k <= 1 ? options.size() >= k : distinct(all.left) >= k) levels_.push_back(std::move(all));
  }

  std::optional<std::vector<const Node*>> next() {
    if (k_ == 0) {
      if (levels_.empty()) return std::nullopt;
      levels_.clear();
      return std::vector<const Node*>{};
    }
    while (!levels_.empty()) {
      Level& level = levels_.back();
      if (level.at == level.left.size()) {
        levels_.pop_back();
        if (!chosen_.empty()) chosen_.pop_back();
        continue;
      }
      const Node* pick = level.left[level.at++];
      if (levels_.size() == k_) {
        std::vector<const Node*> out = chosen_;
        out.push_back(pick);
        return out;
      }
      Level others;
      for (const Node* option : level.left)
        if (!(*option == *pick)) others.left.push_back(option);
      chosen_.push_back(pick);
      levels_.push_back(std::move(others));
    }
    return std::nullopt;
  }

 private:
  struct Level {
    std::vector<const Node*> left;
    size_t at = 0;
  };

  static size_t distinct(const std::vector<const Node*>& options) {
    size_t n = 0;
    for (auto o = options.begin(); o != options.end(); ++o)
      n += std::none_of(options.begin(), o, [&](const Node* before) { return *before == **o; });
    return n;
  }
  size_t k_;
  std::vector<Level> levels_;
  std::vector<const Node*> chosen_;
};

// Every choice of lo to hi different options in every order, in the library's order: counts
// rising, then arrangements, then their prompts; a combination whose prompts repeat one another
// is dropped, as is one already made.
class CombinatorialVariant final : public Generator {
 public:
  CombinatorialVariant(const Node& variant, Scope scope)
      : variant_(variant), scope_(std::move(scope)) {}

  std::optional<std::string> next() override {
    if (!started_) start();
    if (lines_) return lines_->next();
    while (true) {
      if (!product_) {
        std::optional<std::vector<const Node*>> arrangement;
        if (arrangements_) arrangement = arrangements_->next();
        if (!arrangement) {
          if (next_count_ > hi_) return std::nullopt;
          count_ = next_count_++;
          arrangements_.emplace(variant_.children, count_);
          continue;
        }
        product_.emplace(std::move(*arrangement), scope_);
      }
      std::optional<std::vector<std::string>> prompts = product_->next();
      if (!prompts) {
        product_.reset();
        waste();
        continue;
      }
      std::vector<std::string> distinct;
      for (std::string& p : *prompts)
        if (std::find(distinct.begin(), distinct.end(), p) == distinct.end())
          distinct.push_back(std::move(p));
      if (distinct.size() != count_ || !seen_.insert(distinct).second) {
        waste();
        continue;
      }
      return joined(distinct, variant_.separator);
    }
  }

 private:
  // A combination dropped, or an arrangement of options used up: work that makes no prompt.
  void waste() {
    ZF_CHECK(++scope_.expansion->wasted <= kMaxWasted,
             "[prompt] the template's variants dropped over {} combinations of options that "
             "repeat one another",
             kMaxWasted);
  }

  void start() {
    started_ = true;
    if (is_wildcard_variant(variant_)) {
      auto [made, scope] = wildcard_variant(variant_, scope_);
      lines_ = std::make_unique<CombinatorialVariant>(*made, std::move(scope));
      return;
    }
    // A wildcard whose values all weigh under 1 makes a variant of no options: no prompts.
    next_count_ = variant_.children.empty() ? 1 : std::min(variant_.lo, variant_.children.size());
    hi_ = std::min(variant_.hi, variant_.children.size());
  }

  const Node& variant_;
  Scope scope_;
  bool started_ = false;
  std::unique_ptr<CombinatorialVariant> lines_;  // a lone wildcard's lines as the options
  size_t next_count_ = 0, hi_ = 0, count_ = 0;
  std::optional<Arrangements> arrangements_;
  std::optional<Product> product_;
  std::set<std::vector<std::string>> seen_;
};

// One prompt drawn as the library's RandomSampler draws it, draw for draw from the same Python
// Random: a variant of several options first draws how many (randint over its count cut to the
// options), then which, one at a time without replacement (random.choices by weight), and only
// then draws the chosen ones, joined by its separator. A variant of one option is that option.
class RandomVariant final : public Generator {
 public:
  RandomVariant(const Node& variant, Scope scope) : variant_(variant), scope_(std::move(scope)) {}

  std::optional<std::string> next() override {
    const std::vector<Node>& options = variant_.children;
    ZF_CHECK(!options.empty(),
             "[prompt] a wildcard in braces has no value of weight 1 or more to choose from");
    if (options.size() == 1) {
      if (!only_) {
        if (is_wildcard_variant(variant_)) {
          auto [made, scope] = wildcard_variant(variant_, scope_);
          only_ = std::make_unique<RandomVariant>(*made, std::move(scope));
        } else {
          only_ = generator(options.front(), scope_);
        }
      }
      return only_->next();
    }
    PythonRandom& random = *scope_.expansion->random;
    const size_t lo = std::min(variant_.lo, options.size());
    const size_t hi = std::min(variant_.hi, options.size());
    const auto count =
        static_cast<size_t>(random.randint(static_cast<int64_t>(lo), static_cast<int64_t>(hi)));
    std::vector<const Node*> left;
    for (const Node& option : options) left.push_back(&option);
    std::vector<double> weights = variant_.weights;
    std::vector<const Node*> chosen;
    for (size_t k = 0; k < count; ++k) {
      const Node* pick = left[random.choices(weights)];
      chosen.push_back(pick);
      // As the library removes it: the first option equal to the pick, and the first weight
      // equal to that option's (not always its own when weights repeat).
      const auto first = static_cast<size_t>(
          std::find_if(left.begin(), left.end(), [&](const Node* o) { return *o == *pick; }) -
          left.begin());
      weights.erase(std::find(weights.begin(), weights.end(), weights[first]));
      left.erase(left.begin() + static_cast<std::ptrdiff_t>(first));
    }
    std::vector<GeneratorPtr> generators;
    for (const Node* option : chosen) generators.push_back(generator(*option, scope_));
    std::vector<std::string> parts;
    for (const GeneratorPtr& g : generators) parts.push_back(*g->next());
    return parts.empty() ? std::string() : joined(parts, variant_.separator);
  }

 private:
  const Node& variant_;
  Scope scope_;
  GeneratorPtr only_;
};

// A wildcard's values (its name drawn first, its variables bound for them): in combinatorial
// mode each value's prompts in turn (int(weight) times); in random mode one value drawn per
// prompt, by random.choice, or where the weights differ by random.choices, ten at a time as the
// library draws them (so the later prompts of a batch take the rest of the ten).
class WildcardGenerator final : public Generator {
 public:
  WildcardGenerator(const Node& wildcard, Scope scope)
      : wildcard_(wildcard), scope_(std::move(scope)) {}

  std::optional<std::string> next() override {
    if (!entries_) start();
    if (PythonRandom* random = scope_.expansion->random) {
      const std::vector<Node>& values = entries_->values;
      if (!entries_->varied_weights)
        return generator(values[random->choice(values.size())], scope_)->next();
      if (drawn_.empty())
        for (int k = 0; k < kDrawnTogether; ++k)
          drawn_.push_back(&values[random->choices(entries_->weights)]);
      const Node* pick = drawn_.front();
      drawn_.pop_front();
      return generator(*pick, scope_)->next();
    }
    const std::vector<size_t>& repeated = entries_->repeated;
    while (at_ < repeated.size()) {
      if (!current_) current_ = generator(entries_->values[repeated[at_]], scope_);
      if (std::optional<std::string> prompt = current_->next()) return prompt;
      current_.reset();
      ++at_;
    }
    return std::nullopt;
  }

 private:
  static constexpr int kDrawnTogether = 10;

  void start() {
    const std::string name = first_prompt(wildcard_.children.front(), scope_);
    scope_ = entering_wildcard(name, scope_);
    for (const auto& [variable, value] : wildcard_.bindings) scope_.variables[variable] = &value;
    entries_ = &scope_.expansion->book.entries(name);
  }

  const Node& wildcard_;
  Scope scope_;
  const WildcardEntries* entries_ = nullptr;
  size_t at_ = 0;
  GeneratorPtr current_;
  std::deque<const Node*> drawn_;  // random mode, weighted values
};

// %{wrapper$$inner}: in combinatorial mode each wrapper prompt with each inner one, the wrapper's
// varying slowest; in random mode one of each, the wrapper drawn first.
class WrapGenerator final : public Generator {
 public:
  WrapGenerator(const Node& wrap, Scope scope) : wrap_(wrap), scope_(std::move(scope)) {}

  std::optional<std::string> next() override {
    std::vector<std::string> pair;
    if (scope_.expansion->random) {
      if (!wrapper_) {
        wrapper_ = generator(wrap_.children[0], scope_);
        inner_ = generator(wrap_.children[1], scope_);
      }
      pair = {*wrapper_->next(), *inner_->next()};
    } else {
      // The library takes an empty wrapper or inner part (an empty sequence is false in Python)
      // for no prompts at all here.
      const auto empty = [](const Node& n) {
        return n.kind == Kind::Sequence && n.children.empty();
      };
      if (empty(wrap_.children[0]) || empty(wrap_.children[1])) return std::nullopt;
      if (!product_) product_.emplace(std::vector{&wrap_.children[0], &wrap_.children[1]}, scope_);
      std::optional<std::vector<std::string>> prompts = product_->next();
      if (!prompts) return std::nullopt;
      pair = std::move(*prompts);
    }
    return wrapped(pair[0], pair[1]);
  }

 private:
  const Node& wrap_;
  Scope scope_;
  GeneratorPtr wrapper_, inner_;    // random mode
  std::optional<Product> product_;  // combinatorial mode
};

GeneratorPtr generator(const Node& node, const Scope& scope) {
  const bool random = scope.expansion->random != nullptr;
  switch (node.kind) {
    case Kind::Text:
      return std::make_unique<Constant>(node.text, random);
    case Kind::SetVariable:  // a template that only sets a variable stands for nothing
      return std::make_unique<Constant>(std::string(), random);
    case Kind::Sequence:
      return std::make_unique<SequenceGenerator>(node, scope);
    case Kind::Variant:
      if (random) return std::make_unique<RandomVariant>(node, scope);
      return std::make_unique<CombinatorialVariant>(node, scope);
    case Kind::Wildcard:
      return std::make_unique<WildcardGenerator>(node, scope);
    case Kind::Variable:
      return variable_generator(node, scope);
    case Kind::Wrap:
      return std::make_unique<WrapGenerator>(node, scope);
  }
  fail("[prompt] unknown template part");
}

}  // namespace

std::vector<std::string> expand_dynamic_prompt(std::string_view text, const Wildcards& wildcards,
                                               size_t max_prompts) {
  const Node t = dynamic_prompt::parse(text, "prompt", Mode::Combinatorial);
  Expansion expansion{WildcardBook(wildcards, Mode::Combinatorial), nullptr};
  const GeneratorPtr prompts = generator(t, Scope{&expansion});
  std::vector<std::string> out;
  while (out.size() < max_prompts) {
    std::optional<std::string> prompt = prompts->next();
    if (!prompt) break;
    out.push_back(std::move(*prompt));
  }
  // The library returns nothing here; making no image without a word would be worse.
  ZF_CHECK(!out.empty() || max_prompts == 0,
           "[prompt] the template stands for no prompt: each of its combinations repeats an "
           "option, or it wraps nothing");
  return out;
}

std::vector<std::string> sample_dynamic_prompts(std::string_view text, const Wildcards& wildcards,
                                                uint64_t seed, size_t count) {
  const Node t = dynamic_prompt::parse(text, "prompt", Mode::Random);
  PythonRandom random(seed);
  Expansion expansion{WildcardBook(wildcards, Mode::Random), &random};
  // One generator for all the prompts, reseeded for each, as the extension draws a batch.
  const GeneratorPtr prompts = generator(t, Scope{&expansion});
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    random.seed(seed + i);
    out.push_back(*prompts->next());
  }
  return out;
}

}  // namespace zflow::text
