#include "text/wildcard_folder.h"

#include <fnmatch.h>

#include <algorithm>
#include <fstream>
#include <memory>

#include "core/error.h"

namespace zflow::text {

namespace {

// Every NAME.txt below `folder` as "sub/NAME" and its path, in name order.
std::vector<std::pair<std::string, std::filesystem::path>> wildcard_files(
    const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, fs::path>> files;
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
    if (path.extension() == ".txt" && it->is_regular_file())
      files.emplace_back(fs::relative(path, folder).replace_extension().generic_string(), path);
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> read_lines(const std::filesystem::path& file) {
  std::ifstream in(file);
  ZF_CHECK(in.good(), "[prompt] wildcard file {}: cannot read it", file.string());
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

WildcardLines wildcard_folder(const std::filesystem::path& folder) {
  // Listed once, here; read-only afterwards, so one may serve several threads.
  auto files = std::make_shared<const std::vector<std::pair<std::string, std::filesystem::path>>>(
      wildcard_files(folder));
  return [folder, files](const std::string& name) {
    ZF_CHECK(name.find("..") == std::string::npos,
             "[prompt] wildcard __{}__: a name inside the wildcard folder is expected", name);
    // As dynamicprompts cleans a name: separators made one '/', none at either end.
    std::string pattern;
    for (char c : name) {
      if (c == '\\') c = '/';
      if (c != '/' || (!pattern.empty() && pattern.back() != '/')) pattern += c;
    }
    while (!pattern.empty() && pattern.back() == '/') pattern.pop_back();
    std::vector<std::string> lines;
    for (const std::string& tried : {pattern, "**/" + pattern}) {
      for (const auto& [file_name, path] : *files)
        if (fnmatch(tried.c_str(), file_name.c_str(), FNM_NOESCAPE) == 0)
          for (std::string& line : read_lines(path)) lines.push_back(std::move(line));
      if (!lines.empty() || pattern.starts_with("**")) break;
    }
    ZF_CHECK(!lines.empty(), "[prompt] wildcard __{}__: no file {}.txt (or matching it) in {}",
             name, pattern, folder.string());
    return lines;
  };
}

}  // namespace zflow::text
