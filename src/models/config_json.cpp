#include "models/config_json.h"

#include "core/error.h"

namespace zflow::models {

nlohmann::json parse_config_json(const std::string& text, std::string_view tag,
                                 const std::string& source, std::string_view class_name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("[{}] {}: not valid JSON: {}", tag, source, e.what());
  }
  ZF_CHECK(j.is_object(), "[{}] {}: expected a JSON object", tag, source);
  if (!class_name.empty() && j.contains("_class_name") && j["_class_name"] != class_name)
    fail("[{}] {}: _class_name is {}, expected \"{}\"", tag, source, j["_class_name"].dump(),
         class_name);
  return j;
}

}  // namespace zflow::models
