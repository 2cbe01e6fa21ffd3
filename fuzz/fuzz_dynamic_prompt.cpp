// Fuzzes the Dynamic Prompts template expander: any text, with wildcards whose lines are
// templates themselves (one refers to itself, another to a wildcard that does not exist). Any
// zflow::Error is a correct rejection; any other exception, crash, sanitizer report or timeout is
// a bug, in particular expansion work that grows past the cap on prompts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/dynamic_prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxPrompts = 256;
  const zflow::text::WildcardLines wildcards = [](const std::string& name) {
    if (name == "a") return std::vector<std::string>{"x", "{y|__b__}", "# comment", ""};
    if (name == "b") return std::vector<std::string>{"{2$$p|q|r}", "__a__"};
    if (name == "c") return std::vector<std::string>{"__missing__"};
    zflow::fail("[fuzz] no wildcard {}", name);
  };
  try {
    const std::vector<std::string> prompts = zflow::text::expand_dynamic_prompt(
        std::string_view(reinterpret_cast<const char*>(data), size), wildcards, kMaxPrompts);
    if (prompts.empty() || prompts.size() > kMaxPrompts) __builtin_trap();
  } catch (const zflow::Error&) {
  }
  return 0;
}
