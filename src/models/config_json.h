// The part every model config reader shares: a config.json's text as a JSON object, with the
// same errors everywhere ("[tag] source: not valid JSON: ...", "... expected a JSON object",
// "... _class_name is X, expected \"Y\"").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace zflow::models {

// `text` parsed as an object; errors name `tag` and `source`. With `class_name`, a `_class_name`
// other than it is an error too (an absent one is not: hand-written configs omit it).
nlohmann::json parse_config_json(const std::string& text, std::string_view tag,
                                 const std::string& source, std::string_view class_name = {});

}  // namespace zflow::models
