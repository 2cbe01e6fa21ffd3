#include "core/file_io.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace zflow {

std::string read_text_file(const std::filesystem::path& path, std::string_view component) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    fail("[{}] {}: cannot open the file ({})", component, path.string(), std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail("[{}] {}: read error", component, path.string());
  return std::move(text).str();
}

}  // namespace zflow
