// Errors that say where they come from: the op or component in brackets, then the
// file / tensor / field and what was expected. One exception type, so callers
// (CLI, server) can turn any failure into one clear line.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace zflow {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws zflow::Error with a fmt-formatted message, e.g.
//   fail("[safetensors] {}: tensor '{}' ends at byte {}, past the file end {}", path, name, end,
//   size);
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace zflow

// Checks an internal invariant or a caller's argument; the message names what went wrong.
#define ZF_CHECK(cond, ...)                  \
  do {                                       \
    if (!(cond)) ::zflow::fail(__VA_ARGS__); \
  } while (0)
