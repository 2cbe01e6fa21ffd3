#include "text/wildcard_folder.h"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <optional>

#include "core/error.h"
#include "text/structured_wildcards.h"

namespace zflow::text {

namespace {

namespace fs = std::filesystem;

// A wildcard of the folder: a text file, read when asked for, or a structured file's entry.
struct FolderWildcard {
  std::string name;  // "sub/NAME"
  fs::path file;
  std::optional<std::vector<WildcardValue>> values;  // a structured file's, read when listed

  bool operator<(const FolderWildcard& other) const { return name < other.name; }
};

std::string relative_name(const fs::path& path, const fs::path& folder) {
  return fs::relative(path, folder).replace_extension().generic_string();
}

// Every NAME.txt below `folder` as "sub/NAME", and every entry of a .json or .yaml file as its
// folder's "sub/" and the entry's name, in name order.
std::vector<FolderWildcard> folder_wildcards(const fs::path& folder) {
  std::vector<FolderWildcard> found;
  std::error_code error;
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink,
                                      error);
  ZF_CHECK(!error, "[prompt] wildcard folder {}: {}", folder.string(), error.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    ZF_CHECK(!error, "[prompt] wildcard folder {}: {}", folder.string(), error.message());
    const fs::path& path = it->path();
    if (path.filename().string().starts_with('.')) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file()) continue;
    if (path.extension() == ".txt") {
      found.push_back({relative_name(path, folder), path, std::nullopt});
    } else if (path.extension() == ".json" || path.extension() == ".yaml") {
      const std::string prefix =
          path.parent_path() == folder ? "" : relative_name(path.parent_path(), folder) + "/";
      for (NamedWildcard& w : read_structured_wildcards(path))
        found.push_back({prefix + w.name, path, std::move(w.values)});
    }
  }
  std::stable_sort(found.begin(), found.end());
  return found;
}

// A text file's values, as the library reads them: each line stripped, blank ones and # comments
// left out.
std::vector<WildcardValue> text_file_values(const fs::path& file) {
  std::ifstream in(file);
  ZF_CHECK(in.good(), "[prompt] wildcard file {}: cannot read it", file.string());
  std::vector<WildcardValue> values;
  for (std::string line; std::getline(in, line);) {
    line.erase(0, line.find_first_not_of(" \t\r\f\v"));
    line.erase(line.find_last_not_of(" \t\r\f\v") + 1);
    if (!line.empty() && line[0] != '#') values.push_back({.text = std::move(line)});
  }
  return values;
}

}  // namespace

Wildcards wildcard_folder(const fs::path& folder) {
  // Listed once, here; read-only afterwards, so one may serve several threads.
  auto found = std::make_shared<const std::vector<FolderWildcard>>(folder_wildcards(folder));
  return [folder, found](const std::string& name) {
    ZF_CHECK(name.find("..") == std::string::npos,
             "[prompt] wildcard __{}__: a name inside the wildcard folder is expected", name);
    // As dynamicprompts cleans a name: separators made one '/', none at either end.
    std::string pattern;
    for (char c : name) {
      if (c == '\\') c = '/';
      if (c != '/' || (!pattern.empty() && pattern.back() != '/')) pattern += c;
    }
    while (!pattern.empty() && pattern.back() == '/') pattern.pop_back();
    std::vector<WildcardValue> values;
    bool matched = false;
    for (const std::string& tried : {pattern, "**/" + pattern}) {
      for (const FolderWildcard& w : *found) {
        if (fnmatch(tried.c_str(), w.name.c_str(), FNM_NOESCAPE) != 0) continue;
        matched = true;
        const std::vector<WildcardValue> more = w.values ? *w.values : text_file_values(w.file);
        values.insert(values.end(), more.begin(), more.end());
      }
      if (!values.empty() || pattern.starts_with("**")) break;
    }
    ZF_CHECK(matched,
             "[prompt] wildcard __{}__: no file {}.txt (or matching it), nor a .json or .yaml "
             "entry, in {}",
             name, pattern, folder.string());
    return values;
  };
}

}  // namespace zflow::text
