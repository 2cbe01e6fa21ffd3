#include "text/structured_wildcards.h"

#include <yaml-cpp/yaml.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <regex>

#include "core/error.h"
#include "core/file_io.h"

namespace zflow::text {

namespace {

// A JSON or YAML value as Python's json and yaml.safe_load give it, as far as the library looks.
struct Value {
  enum class Type { Null, Bool, Number, String, List, Map, Other } type = Type::Null;
  std::string text;                              // a string's
  double number = 0;                             // a number's, a bool's 0 or 1
  std::vector<Value> items;                      // a list's, or a mapping's values
  std::vector<std::optional<std::string>> keys;  // a mapping's, none where not a string

  // Python's truth: None, False, 0, "" and empty containers are false.
  explicit operator bool() const {
    switch (type) {
      case Type::Null:
        return false;
      case Type::Bool:
      case Type::Number:
        return number != 0;
      case Type::String:
        return !text.empty();
      case Type::List:
        return !items.empty();
      case Type::Map:
        return !items.empty();
      case Type::Other:
        return true;
    }
    return true;
  }

  const Value* find(std::string_view key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

// Deeper nesting than any wildcard file has is refused, not followed down the stack; and YAML's
// aliases, which can repeat a part exponentially often, are followed at most this many values.
constexpr int kMaxDepth = 256;
constexpr size_t kMaxValues = size_t{1} << 20;

// Counts what a conversion has made, against those bounds.
struct Budget {
  size_t values = 0;
  void spend(int depth) {
    ZF_CHECK(depth <= kMaxDepth, "nests over {} levels deep", kMaxDepth);
    ZF_CHECK(++values <= kMaxValues, "holds over {} values (with its aliases followed)",
             kMaxValues);
  }
};

Value from_json(const nlohmann::json& j, Budget& budget, int depth = 0) {
  budget.spend(depth);
  Value v;
  if (j.is_null()) return v;
  if (j.is_boolean()) return {.type = Value::Type::Bool, .number = j.get<bool>() ? 1.0 : 0.0};
  if (j.is_number()) return {.type = Value::Type::Number, .number = j.get<double>()};
  if (j.is_string()) return {.type = Value::Type::String, .text = j.get<std::string>()};
  if (j.is_array()) {
    v.type = Value::Type::List;
    for (const nlohmann::json& item : j) v.items.push_back(from_json(item, budget, depth + 1));
    return v;
  }
  v.type = Value::Type::Map;
  for (const auto& [key, item] : j.items()) {
    v.keys.emplace_back(key);
    v.items.push_back(from_json(item, budget, depth + 1));
  }
  return v;
}

// YAML 1.1's types for a plain (unquoted) scalar, as yaml.safe_load resolves them.
Value::Type yaml11_plain_type(const std::string& s) {
  static const std::regex kNull("~|null|Null|NULL|");
  static const std::regex kBool(
      "yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF");
  static const std::regex kInt(
      "[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|"
      "[-+]?[1-9][0-9_]*(:[0-5]?[0-9])+");
  static const std::regex kFloat(
      "[-+]?([0-9][0-9_]*)\\.[0-9_]*([eE][-+][0-9]+)?|\\.[0-9][0-9_]*([eE][-+][0-9]+)?|"
      "[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\\.[0-9_]*|[-+]?\\.(inf|Inf|INF)|\\.(nan|NaN|NAN)");
  static const std::regex kTimestamp(
      "[0-9]{4}-[0-9]{2}-[0-9]{2}|"
      "[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \\t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(\\.[0-9]*)?"
      "([ \\t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?");
  if (std::regex_match(s, kNull)) return Value::Type::Null;
  if (std::regex_match(s, kBool)) return Value::Type::Bool;
  if (std::regex_match(s, kInt) || std::regex_match(s, kFloat)) return Value::Type::Number;
  if (std::regex_match(s, kTimestamp)) return Value::Type::Other;
  return Value::Type::String;
}

// A YAML 1.1 int or float's value: '_' left out; 0b, 0x and leading-0 octal ints; .inf, .nan.
double yaml11_number(std::string s) {
  std::erase(s, '_');
  const bool negative = s.starts_with('-');
  const std::string body = s.substr(s.starts_with('-') || s.starts_with('+') ? 1 : 0);
  double magnitude;
  if (body.starts_with("0b")) {
    magnitude = static_cast<double>(std::strtoull(body.c_str() + 2, nullptr, 2));
  } else if (body.starts_with("0x")) {
    magnitude = static_cast<double>(std::strtoull(body.c_str() + 2, nullptr, 16));
  } else if (body.size() > 1 && body[0] == '0' && body.find_first_of(".eE") == std::string::npos) {
    magnitude = static_cast<double>(std::strtoull(body.c_str(), nullptr, 8));
  } else if (body.find(':') != std::string::npos) {  // sexagesimal, 1:30 = 90
    magnitude = 0;
    size_t from = 0;
    while (true) {
      const size_t colon = body.find(':', from);
      magnitude = magnitude * 60 + std::strtod(body.substr(from, colon - from).c_str(), nullptr);
      if (colon == std::string::npos) break;
      from = colon + 1;
    }
  } else if (body == ".inf" || body == ".Inf" || body == ".INF") {
    magnitude = HUGE_VAL;
  } else if (body.starts_with(".n") || body.starts_with(".N")) {
    return NAN;
  } else {
    magnitude = std::strtod(body.c_str(), nullptr);
  }
  return negative ? -magnitude : magnitude;
}

Value from_yaml(const YAML::Node& node, Budget& budget, int depth = 0) {
  budget.spend(depth);
  Value v;
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return v;
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      const std::string& tag = node.Tag();
      // "?" marks a plain scalar, "!" a quoted one (a string); an explicit tag names its type.
      const Value::Type type = tag == "?" ? yaml11_plain_type(s)
                               : tag.ends_with(":int") || tag.ends_with(":float")
                                   ? Value::Type::Number
                               : tag.ends_with(":bool") ? Value::Type::Bool
                               : tag.ends_with(":null") ? Value::Type::Null
                                                        : Value::Type::String;
      v.type = type;
      v.text = s;
      if (type == Value::Type::Number) v.number = yaml11_number(s);
      static const std::regex kTrue("yes|Yes|YES|true|True|TRUE|on|On|ON");
      if (type == Value::Type::Bool) v.number = std::regex_match(s, kTrue) ? 1 : 0;
      return v;
    }
    case YAML::NodeType::Sequence:
      v.type = Value::Type::List;
      for (const YAML::Node& item : node) v.items.push_back(from_yaml(item, budget, depth + 1));
      return v;
    case YAML::NodeType::Map:
      v.type = Value::Type::Map;
      for (const auto& entry : node) {
        const Value key = from_yaml(entry.first, budget, depth + 1);
        v.keys.push_back(key.type == Value::Type::String ? std::optional(key.text) : std::nullopt);
        v.items.push_back(from_yaml(entry.second, budget, depth + 1));
      }
      return v;
  }
  return v;
}

// Python's float() of a weight's text: digits, one point, an exponent, '_' between digits.
std::optional<double> python_float(std::string_view s) {
  const size_t from = s.find_first_not_of(" \t\n\r\f\v");
  if (from == std::string_view::npos) return std::nullopt;
  s = s.substr(from, s.find_last_not_of(" \t\n\r\f\v") - from + 1);
  static const std::regex kNumber(
      "[-+]?([0-9](_?[0-9])*(\\.([0-9](_?[0-9])*)?)?|\\.[0-9](_?[0-9])*)([eE][-+]?[0-9](_?[0-9])*)"
      "?");
  const std::string text(s);
  if (!std::regex_match(text, kNumber)) return std::nullopt;
  std::string digits;
  for (char c : text)
    if (c != '_') digits += c;
  return std::strtod(digits.c_str(), nullptr);
}

// A list's values: strings ("2::text" weighted) and {text|content, weight} mappings; the rest
// passed over. nullopt where a weight is not a number: the library then drops the whole key.
std::optional<std::vector<WildcardValue>> list_values(const Value& list) {
  std::vector<WildcardValue> values;
  for (const Value& item : list.items) {
    if (!item) continue;
    if (item.type == Value::Type::String) {
      const std::string& s = item.text;
      const size_t last = s.rfind("::");
      if (std::isdigit(static_cast<unsigned char>(s[0])) && last != std::string::npos)
        if (const std::optional<double> weight =
                python_float(std::string_view(s).substr(0, last))) {
          values.push_back({.text = s.substr(last + 2), .weight = *weight, .weighted = true});
          continue;
        }
      values.push_back({.text = s});
    } else if (item.type == Value::Type::Map) {
      const Value* weight_value = item.find("weight");
      double weight = 1;
      if (weight_value) {
        if (weight_value->type == Value::Type::String) {
          const std::optional<double> w = python_float(weight_value->text);
          if (!w) return std::nullopt;
          weight = *w;
        } else if (weight_value->type == Value::Type::Number ||
                   weight_value->type == Value::Type::Bool) {
          weight = weight_value->number;
        } else {
          return std::nullopt;
        }
      }
      const Value* text = item.find("text");
      if (!text || !*text) text = item.find("content");
      if (text && *text && text->type == Value::Type::String)
        values.push_back({.text = text->text, .weight = weight, .weighted = weight != 1});
    }
  }
  return values;
}

void map_wildcards(const Value& map, const std::string& prefix, std::vector<NamedWildcard>& out) {
  for (size_t i = 0; i < map.keys.size(); ++i) {
    const std::optional<std::string>& key = map.keys[i];
    const Value& value = map.items[i];
    if (!key || !value) continue;
    const std::string name = prefix.empty() ? *key : prefix + "/" + *key;
    if (value.type == Value::Type::String) {
      out.push_back({name, {{.text = value.text}}});
    } else if (value.type == Value::Type::List) {
      if (std::optional<std::vector<WildcardValue>> values = list_values(value))
        out.push_back({name, std::move(*values)});
    } else if (value.type == Value::Type::Map) {
      map_wildcards(value, name, out);
    }
  }
}

}  // namespace

std::vector<NamedWildcard> read_structured_wildcards(const std::filesystem::path& file) {
  const std::string content = read_text_file(file, "prompt");
  Value data;
  Budget budget;
  try {
    if (file.extension() == ".json")
      data = from_json(nlohmann::json::parse(content), budget);
    else
      data = from_yaml(YAML::Load(content), budget);
  } catch (const nlohmann::json::exception& e) {
    fail("[prompt] wildcard file {}: not valid JSON: {}", file.string(), e.what());
  } catch (const YAML::Exception& e) {
    fail("[prompt] wildcard file {}: not valid YAML at line {}: {}", file.string(), e.mark.line + 1,
         e.msg);
  } catch (const Error& e) {
    fail("[prompt] wildcard file {}: {}", file.string(), e.what());
  }
  std::vector<NamedWildcard> out;
  if (data.type == Value::Type::Map) {
    map_wildcards(data, "", out);
  } else if (data.type == Value::Type::List) {
    NamedWildcard whole{file.stem().string(), {}};
    for (const Value& item : data.items)
      if (item.type == Value::Type::String) whole.values.push_back({.text = item.text});
    if (!whole.values.empty()) out.push_back(std::move(whole));
  }
  return out;
}

}  // namespace zflow::text
