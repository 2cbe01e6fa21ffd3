// The syntax tree of a Dynamic Prompts template (see text/dynamic_prompt.h for the syntax), shaped
// as the dynamicprompts library's commands are: which of them are equal decides which options
// a variant treats as one, so the shapes must match, not just the text they stand for.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zflow::text::dynamic_prompt {

// How prompts are drawn from a template: every one in order, or one at random per prompt.
enum class Mode { Combinatorial, Random };

struct Node {
  enum class Kind {
    Text,         // literal text
    Sequence,     // children one after the other (a single child stands alone, not in one)
    Variant,      // one (or lo to hi) of its children, the options
    Wildcard,     // a line of a wildcard file; children[0] makes its name
    SetVariable,  // ${text=children[0]}: only ever a member of a sequence
    Variable,     // ${text}, or ${text:children[0]} with a default
    Wrap,         // %{children[0]$$children[1]}: the second put into the first at its "..."
  };
  Kind kind = Kind::Text;
  std::string text;
  std::vector<Node> children;
  std::vector<double> weights;  // a variant's options' ("0.5::"; 1 without one)
  size_t lo = 1, hi = 1;        // how many options a variant takes
  std::string separator = ",";  // between them
  std::vector<std::pair<std::string, Node>> bindings;  // a wildcard's variables, __name(k=v)__
  bool immediate = false;                              // ${n=!v}: v drawn once, where it is set
  bool overwrite = true;                               // false for ${n?=v}

  bool operator==(const Node&) const = default;
};

// The tree of `text`; errors name `where` ("prompt", a wildcard's line) and the character.
Node parse(std::string_view text, std::string where, Mode mode);

}  // namespace zflow::text::dynamic_prompt
