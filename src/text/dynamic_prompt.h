// Prompt templates in the syntax of the Dynamic Prompts extension (A1111's sd-dynamic-prompts,
// its `dynamicprompts` library), expanded into every prompt they stand for, in the order of its
// CombinatorialPromptGenerator: how one product line becomes a prompt per colour, material and
// setting.
//
//   {a|b|c}          one of the options; options nest ({a|{b|c}}) and hold any template. An
//                    option's leading spaces are dropped, then a weight "0.5::" (which only
//                    random sampling would use; here every option is made)
//   {2$$a|b|c}       two different options in every order, joined by ","; {1-3$$...} one to
//                    three, {-2$$...} one or two, {2-$$...} two or more; {2$$ and $$a|b|c} joins
//                    them with " and "; counts past the options are cut to them
//   __name__         a line of the wildcard file name.txt (or __sub/name__ for sub/name.txt):
//                    its lines in sorted order, blank ones and # comments left out, each itself
//                    a template
//
// Text outside braces is kept as it is (a stray '}' or '|' included). Where dynamicprompts
// quietly carries on, zflow stops with an error naming the place: an unclosed '{', a malformed
// count, an unknown wildcard.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

// A wildcard's raw lines, by name ("colors", "sub/wood"); an Error for an unknown one.
using WildcardLines = std::function<std::vector<std::string>(const std::string& name)>;

// The wildcard files of `folder`: NAME.txt below it, read as UTF-8 text.
WildcardLines wildcard_folder(const std::filesystem::path& folder);

// The first `max_prompts` prompts `text` stands for (a text without braces or wildcards stands
// for itself). Errors name the character where the template goes wrong.
std::vector<std::string> expand_dynamic_prompt(std::string_view text,
                                               const WildcardLines& wildcards, size_t max_prompts);

}  // namespace zflow::text
