// Prompt templates in the syntax of the Dynamic Prompts extension (A1111's sd-dynamic-prompts,
// its `dynamicprompts` library), in its two modes: combinatorial, every prompt a template stands
// for in the order of its CombinatorialPromptGenerator (how one product line becomes a prompt per
// colour, material and setting), and random, its default, one prompt per image drawn from that
// image's seed as its RandomPromptGenerator draws it (many variants without making them all).
//
//   {a|b|c}          one of the options; options nest ({a|{b|c}}) and hold any template. An
//                    option's leading spaces are dropped, then a weight "0.5::" (which random
//                    mode draws by; combinatorial mode makes every option). A '!' after the '{'
//                    (or '~' in random mode) names the mode the variant is sampled in. In
//                    combinatorial mode a variant makes each distinct prompt once
//   {2$$a|b|c}       two different options in every order, joined by ","; {1-3$$...} one to
//                    three, {-2$$...} one or two, {2-$$...} two or more; {2$$ and $$a|b|c} joins
//                    them with " and "; counts past the options are cut to them. Combinations
//                    whose options come out alike are dropped
//   __name__         a line of the wildcard file name.txt (or __sub/name__ for sub/name.txt; see
//                    text/wildcard_folder.h for globs and files in subfolders): its lines each
//                    once in sorted order, blank ones and # comments left out, each itself a
//                    template. __name(k=v, k2={x|y})__ sets variables for its lines;
//                    __name_${k}__ takes part of the name from a variable (__${k:dflt}__ with a
//                    default, else the variable's own name)
//   ${k=v}           sets variable k for the whole prompt (outside braces only) to the template v,
//                    drawn anew where it is read; ${k=!v} draws v once, where it is set (in random
//                    mode once for all the prompts of one call, as the extension draws a batch);
//                    ${k?=v} only if k is not set around it (by a wildcard's variables)
//   ${k}, ${k:v}     the variable's value, or the template v where k is not set
//   %{w...$$x}       x put into w at its first "..." (or Unicode ellipsis), after w without one
//   # note           outside braces, '#' (or "//", "/* */" where a part may begin) starts a
//                    comment to the end of the line
//
// Text outside braces is kept as it is (a stray '}' or '|' included, and a '$' or '%' not before
// '{'). Where dynamicprompts quietly carries on, zflow stops with an error naming the place: an
// unclosed '{', a malformed count, an unknown wildcard or variable, another mode's
// sampling-method prefix, options that repeat one another past 2^18 dropped combinations.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

// One value of a wildcard: a line of a text file, or an entry of a structured one (see
// text/structured_wildcards.h), which may carry a weight: in random mode the value is drawn by it,
// in combinatorial mode made int(weight) times, as the library does.
struct WildcardValue {
  std::string text;
  double weight = 1;
  // Given a weight, even 1 ("1::text"): the library then keeps it apart from the same text
  // without one.
  bool weighted = false;

  bool operator==(const WildcardValue&) const = default;
};

// A wildcard's values, by name ("colors", "sub/wood"); an Error for an unknown one.
using Wildcards = std::function<std::vector<WildcardValue>(const std::string& name)>;

// The first `max_prompts` prompts `text` stands for (a text without braces or wildcards stands
// for itself). Errors name the character where the template goes wrong.
std::vector<std::string> expand_dynamic_prompt(std::string_view text, const Wildcards& wildcards,
                                               size_t max_prompts);

// `count` prompts drawn from `text` in the extension's random mode (its default): prompt i as
// dynamicprompts' RandomPromptGenerator draws it with Python's Random seeded with seed + i, which
// is how the extension gives each image of a batch its own prompt from that image's seed. As
// there, one generator draws them all: what it draws once (an immediate variable, a wildcard's
// name) is drawn with the first seed and kept.
std::vector<std::string> sample_dynamic_prompts(std::string_view text, const Wildcards& wildcards,
                                                uint64_t seed, size_t count);

}  // namespace zflow::text
