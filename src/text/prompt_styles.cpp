#include "text/prompt_styles.h"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <map>

#include "core/error.h"

namespace zflow::text {

namespace {

using Row = std::vector<std::string>;

// Python's csv.reader with skipinitialspace=True over the whole text: fields split at commas,
// a field that starts with '"' quoted up to its closing quote ("" inside is one quote, line
// breaks kept), rows ending at a line break outside quotes; blank lines give no row.
std::vector<Row> csv_rows(const std::string& text, const std::string& where) {
  std::vector<Row> rows;
  Row row;
  std::string field;
  size_t i = 0;
  const auto end_row = [&] {
    row.push_back(std::move(field));
    field.clear();
    if (!(row.size() == 1 && row[0].empty())) rows.push_back(std::move(row));
    row.clear();
  };
  bool at_field_start = true;
  while (i < text.size()) {
    const char c = text[i];
    if (at_field_start && c == ' ') {
      ++i;
      continue;
    }
    if (at_field_start && c == '"') {
      const size_t open = i++;
      while (true) {
        ZF_CHECK(i < text.size(), "[styles] {}: the quote at byte {} is never closed", where,
                 open + 1);
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        field += text[i++];
      }
      at_field_start = false;
      continue;
    }
    at_field_start = false;
    if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      at_field_start = true;
    } else if (c == '\n' || c == '\r') {
      end_row();
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      at_field_start = true;
    } else {
      field += c;
    }
    ++i;
  }
  if (!field.empty() || !row.empty()) end_row();
  return rows;
}

}  // namespace

std::vector<PromptStyle> read_prompt_styles(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  ZF_CHECK(in.good(), "[styles] {}: cannot open the file", file.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.starts_with("\xEF\xBB\xBF")) text.erase(0, 3);
  const std::vector<Row> rows = csv_rows(text, file.string());
  ZF_CHECK(!rows.empty(), "[styles] {}: no header row (name,prompt,negative_prompt)",
           file.string());
  std::map<std::string, size_t> column;
  for (size_t i = 0; i < rows[0].size(); ++i) column.emplace(rows[0][i], i);
  const auto at = [&](const char* name) {
    const auto it = column.find(name);
    return it == column.end() ? std::string::npos : it->second;
  };
  const size_t name = at("name"), negative = at("negative_prompt");
  const size_t prompt = at("prompt") != std::string::npos ? at("prompt") : at("text");
  ZF_CHECK(name != std::string::npos && prompt != std::string::npos,
           "[styles] {}: the header needs the columns name and prompt (or text), got {}",
           file.string(), text.substr(0, text.find('\n')));
  std::vector<PromptStyle> styles;
  for (size_t r = 1; r < rows.size(); ++r) {
    const Row& row = rows[r];
    const auto field = [&](size_t i) { return i < row.size() ? row[i] : std::string(); };
    PromptStyle style{field(name), field(prompt), field(negative)};
    if (style.name.empty() || style.name.starts_with('#')) continue;
    // A later row of the same name replaces the earlier, as A1111's dictionary does.
    const auto same = std::find_if(styles.begin(), styles.end(),
                                   [&](const PromptStyle& s) { return s.name == style.name; });
    if (same != styles.end())
      *same = std::move(style);
    else
      styles.push_back(std::move(style));
  }
  return styles;
}

std::string with_style(const std::string& style, const std::string& prompt) {
  if (style.find("{prompt}") != std::string::npos) {
    std::string out;
    size_t from = 0;
    for (size_t at; (at = style.find("{prompt}", from)) != std::string::npos; from = at + 8)
      out += style.substr(from, at - from) + prompt;
    return out + style.substr(from);
  }
  const auto strip = [](const std::string& s) {
    const size_t first = s.find_first_not_of(" \t\n\r\f\v");
    if (first == std::string::npos) return std::string();
    return s.substr(first, s.find_last_not_of(" \t\n\r\f\v") - first + 1);
  };
  const std::string p = strip(prompt), s = strip(style);
  if (p.empty()) return s;
  return s.empty() ? p : p + ", " + s;
}

std::string with_styles(std::string text, std::span<const PromptStyle> styles,
                        std::string PromptStyle::*part) {
  for (const PromptStyle& style : styles) text = with_style(style.*part, text);
  return text;
}

const PromptStyle* find_prompt_style(std::span<const PromptStyle> styles, std::string_view name) {
  const auto it = std::find_if(styles.begin(), styles.end(),
                               [&](const PromptStyle& s) { return s.name == name; });
  return it == styles.end() ? nullptr : &*it;
}

}  // namespace zflow::text
