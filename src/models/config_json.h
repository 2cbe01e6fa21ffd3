// The part every model config reader shares: a config.json's text as a JSON object, with the
// same errors everywhere ("[tag] source: not valid JSON: ...", "... expected a JSON object",
// "... _class_name is X, expected \"Y\"").
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include "core/error.h"

namespace zflow::models {

// `text` parsed as an object; errors name `tag` and `source`. With `class_name`, a `_class_name`
// other than it is an error too (an absent one is not: hand-written configs omit it).
nlohmann::json parse_config_json(const std::string& text, std::string_view tag,
                                 const std::string& source, std::string_view class_name = {});

// A config object's optional fields read into variables: an absent or null field leaves the
// variable (its default) alone and read() returns false; a value of the wrong type is an error
// naming `tag`, `source` and the field.
class ConfigFields {
 public:
  ConfigFields(const nlohmann::json& object, std::string_view tag, std::string source)
      : object_(object), tag_(tag), source_(std::move(source)) {}

  template <typename T>
  bool read(const char* key, T& field) const {
    const auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return false;
    try {
      it->get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[{}] {}: field '{}' has the wrong type: {}", tag_, source_, key, it->dump());
    }
    return true;
  }

 private:
  const nlohmann::json& object_;
  std::string_view tag_;
  std::string source_;
};

}  // namespace zflow::models
