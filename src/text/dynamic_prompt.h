// Prompt templates in the syntax of the Dynamic Prompts extension (A1111's sd-dynamic-prompts,
// its `dynamicprompts` library), in its two modes: combinatorial, every prompt a template stands
// for in the order of its CombinatorialPromptGenerator (how one product line becomes a prompt per
// colour, material and setting), and random, its default, one prompt per image drawn from that
// image's seed as its RandomPromptGenerator draws it (many variants without making them all).
//
//   {a|b|c}          one of the options; options nest ({a|{b|c}}) and hold any template. An
//                    option's leading spaces are dropped, then a weight "0.5::" (which random
//                    mode draws by; combinatorial mode makes every option). A '!' after the '{'
//                    (or '~' in random mode) names the mode the variant is sampled in
//   {2$$a|b|c}       two different options in every order, joined by ","; {1-3$$...} one to
//                    three, {-2$$...} one or two, {2-$$...} two or more; {2$$ and $$a|b|c} joins
//                    them with " and "; counts past the options are cut to them
//   __name__         a line of the wildcard file name.txt (or __sub/name__ for sub/name.txt; see
//                    text/wildcard_folder.h for globs and files in subfolders): its lines each
//                    once in sorted order, blank ones and # comments left out, each itself a
//                    template
//
// Text outside braces is kept as it is (a stray '}' or '|' included). Where dynamicprompts
// quietly carries on, zflow stops with an error naming the place: an unclosed '{', a malformed
// count, an unknown wildcard, another mode's sampling-method prefix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

// A wildcard's raw lines, by name ("colors", "sub/wood"); an Error for an unknown one.
using WildcardLines = std::function<std::vector<std::string>(const std::string& name)>;

// The first `max_prompts` prompts `text` stands for (a text without braces or wildcards stands
// for itself). Errors name the character where the template goes wrong.
std::vector<std::string> expand_dynamic_prompt(std::string_view text,
                                               const WildcardLines& wildcards, size_t max_prompts);

// `count` prompts drawn from `text` in the extension's random mode (its default): prompt i as
// dynamicprompts' RandomPromptGenerator draws it with Python's Random seeded with seed + i, which
// is how the extension gives each image of a batch its own prompt from that image's seed.
std::vector<std::string> sample_dynamic_prompts(std::string_view text,
                                                const WildcardLines& wildcards, uint64_t seed,
                                                size_t count);

}  // namespace zflow::text
