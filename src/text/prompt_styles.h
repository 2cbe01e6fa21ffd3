// AUTOMATIC1111's prompt styles: named prompt and negative prompt pieces from its styles.csv
// (columns name, prompt, negative_prompt; the older name, text form too), added to a request's
// prompts by name. A style's text holding "{prompt}" takes the prompt in that place; any other is
// joined after it with ", ".
#pragma once

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace zflow::text {

struct PromptStyle {
  std::string name, prompt, negative_prompt;
};

// The styles of an A1111 styles.csv, read as Python's csv.DictReader reads it (quoted fields
// with "" and line breaks, spaces after a comma skipped, a UTF-8 byte-order mark dropped); rows
// without a name or whose name starts with '#' left out. Errors name the file and row.
std::vector<PromptStyle> read_prompt_styles(const std::filesystem::path& file);

// `prompt` with `style` (one style's prompt or negative prompt) added, as A1111's merge_prompts.
std::string with_style(const std::string& style, const std::string& prompt);

// `text` with the `part` (&PromptStyle::prompt or ::negative_prompt) of each style added in turn,
// as A1111 adds the styles a request names.
std::string with_styles(std::string text, std::span<const PromptStyle> styles,
                        std::string PromptStyle::*part);

// The style of that name, or null.
const PromptStyle* find_prompt_style(std::span<const PromptStyle> styles, std::string_view name);

}  // namespace zflow::text
