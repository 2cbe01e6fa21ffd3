// Fuzzes the Dynamic Prompts template expander in both modes: any text, with wildcards whose
// lines are templates themselves (one refers to itself, another to a wildcard that does not
// exist, others read variables or carry weights). Any zflow::Error is a correct rejection; any
// other exception, crash, sanitizer report or timeout is a bug, in particular expansion work that
// grows past the cap on prompts or their length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "text/dynamic_prompt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kMaxPrompts = 256;
  const zflow::text::Wildcards wildcards = [](const std::string& name) {
    using V = zflow::text::WildcardValue;
    if (name == "a") return std::vector<V>{{"x"}, {"{y|__b__}"}, {"# comment"}, {""}};
    if (name == "b") return std::vector<V>{{"{2$$p|q|r}"}, {"__a__"}};
    if (name == "c") return std::vector<V>{{"__missing__"}};
    if (name == "v") return std::vector<V>{{"${k} ${j:d}"}, {"${k?=w}%{(...)$$__a__}"}};
    if (name == "w")
      return std::vector<V>{{"p", 2.5, true}, {"q", 0.5, true}, {"p"}, {"{r|s}", 1, true}};
    zflow::fail("[fuzz] no wildcard {}", name);
  };
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::vector<std::string> prompts =
        zflow::text::expand_dynamic_prompt(text, wildcards, kMaxPrompts);
    if (prompts.empty() || prompts.size() > kMaxPrompts) __builtin_trap();
  } catch (const zflow::Error&) {
  }
  try {
    const uint64_t seed = size > 0 ? data[0] * 0x9e3779b97f4a7c15ull : 0;
    if (zflow::text::sample_dynamic_prompts(text, wildcards, seed, 3).size() != 3) __builtin_trap();
  } catch (const zflow::Error&) {
  }
  return 0;
}
