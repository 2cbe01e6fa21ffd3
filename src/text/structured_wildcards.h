// Wildcards in a structured file, a .json or .yaml "pantry", read as the Dynamic Prompts library
// reads them: a mapping's keys name wildcards ("colors", and "colors/warm" for a mapping inside),
// each list (or single string) holding its values; a file that is one list is the wildcard named
// after the file. An entry "2::text" or {text: ..., weight: 2} carries a weight. What the library
// passes over is passed over too: keys and entries that are not strings (YAML 1.1 reads `yes`,
// `12`, `0.5`, `~` and dates as other types), empty ones, and a key whose weight is not a number.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "text/dynamic_prompt.h"

namespace zflow::text {

struct NamedWildcard {
  std::string name;  // within the file, '/' between levels
  std::vector<WildcardValue> values;
};

// The wildcards of `file` (by its extension, .json or .yaml); an Error naming the file, and the
// line for YAML, when it is not well formed.
std::vector<NamedWildcard> read_structured_wildcards(const std::filesystem::path& file);

}  // namespace zflow::text
