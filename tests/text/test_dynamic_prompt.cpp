// Prompt templates in the Dynamic Prompts syntax against the extension's own library,
// dynamicprompts' CombinatorialPromptGenerator (tools/golden/make_dynamic_prompts.py): every case's
// prompts, in order, exactly — variants nested and weighted, several options in every order with
// counts, ranges and separators, wildcard files (sorted, comments out, nested, inside counts),
// Chinese text, line breaks and the cap on the number of prompts. Then the errors where the
// library carries on quietly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"
#include "text/dynamic_prompt.h"

namespace zflow::text {
namespace {

const std::filesystem::path kDir = test::fixture("dynamic_prompts");

TEST(DynamicPrompt, ExpandsAsDynamicPromptsCombinatorialGenerator) {
  std::ifstream in(kDir / "dynamic_prompts_cases.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const WildcardLines wildcards = wildcard_folder(kDir / golden["wildcards"].get<std::string>());
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const nlohmann::json& c : golden["cases"]) {
    const std::string templ = c["template"];
    SCOPED_TRACE(templ);
    EXPECT_EQ(expand_dynamic_prompt(templ, wildcards, c["max_prompts"].get<size_t>()),
              c["expected"].get<std::vector<std::string>>());
  }
}

TEST(DynamicPrompt, ErrorsNameThePlace) {
  const WildcardLines wildcards = wildcard_folder(kDir / "wildcards");
  const auto error = [&](std::string_view templ) {
    return test::error_of([&] { expand_dynamic_prompt(templ, wildcards, 100); });
  };
  EXPECT_NE(error("a {red|blue cat").find("the '{' at character 3 is never closed"),
            std::string::npos);
  EXPECT_NE(error("{$$a|b}").find("the count at character 2"), std::string::npos);
  EXPECT_NE(error(std::string(100, '{')).find("braces nest more than 64 deep at character 65"),
            std::string::npos);
  EXPECT_NE(error("{3-1$$a|b}").find("runs from 3 down to 1"), std::string::npos);
  EXPECT_NE(error("a __glazes__ cup").find("wildcard __glazes__: no file"), std::string::npos);
  EXPECT_NE(error("__../secret__").find("a name inside the wildcard folder"), std::string::npos);
  EXPECT_NE(test::error_of([] {
              expand_dynamic_prompt("__a__", {}, 10);
            }).find("__a__: no wildcard folder was given"),
            std::string::npos);
  // Wildcards that refer back to themselves stop instead of recursing.
  const WildcardLines loop = [](const std::string& name) {
    return std::vector<std::string>{name == "a" ? "x __b__" : "y __a__"};
  };
  EXPECT_NE(test::error_of([&] {
              expand_dynamic_prompt("__a__", loop, 10);
            }).find("wildcard __a__ refers to itself (through a, b)"),
            std::string::npos);
  // Underscores that do not enclose a name, and an empty template, are text.
  EXPECT_EQ(expand_dynamic_prompt("snake__ case __x", wildcards, 10),
            (std::vector<std::string>{"snake__ case __x"}));
  EXPECT_EQ(expand_dynamic_prompt("", wildcards, 10), (std::vector<std::string>{""}));
}

}  // namespace
}  // namespace zflow::text
