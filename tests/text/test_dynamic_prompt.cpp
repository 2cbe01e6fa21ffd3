// Prompt templates in the Dynamic Prompts syntax against the extension's own library,
// dynamicprompts' CombinatorialPromptGenerator (tools/golden/make_dynamic_prompts.py): every case's
// prompts, in order, exactly — variants nested and weighted, several options in every order with
// counts, ranges and separators, wildcard files (sorted, comments out, nested, inside counts),
// Chinese text, line breaks, the cap on the number of prompts, and wildcard files found as its
// WildcardManager finds them (globs, subfolders, the recursive retry, hidden folders skipped,
// repeated lines made once). Random mode against its RandomPromptGenerator
// (random_prompts_cases.json): each template's prompt for each of 14 seeds up to 3e15, exactly —
// weights (zero and repeated ones), counts, wildcards as variants, the mode's prefixes. Then the
// errors where the library carries on quietly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <fstream>
#include <functional>

#include <unistd.h>

#include "test_util.h"
#include "text/dynamic_prompt.h"
#include "text/wildcard_folder.h"

namespace zflow::text {
namespace {

const std::filesystem::path kDir = test::fixture("dynamic_prompts");

// A case of syntax_cases.json or structured_cases.json: its prompts in combinatorial mode, and in
// random mode from one call, as the library made them.
void expect_both_modes_as_library(const nlohmann::json& c, const Wildcards& wildcards,
                                  size_t max_prompts) {
  const std::string templ = c["template"];
  SCOPED_TRACE(templ);
  EXPECT_EQ(expand_dynamic_prompt(templ, wildcards, max_prompts),
            c["combinatorial"].get<std::vector<std::string>>());
  const auto drawn = c["random"].get<std::vector<std::string>>();
  EXPECT_EQ(sample_dynamic_prompts(templ, wildcards, std::stoull(c["seed"].get<std::string>()),
                                   drawn.size()),
            drawn);
}

TEST(DynamicPrompt, ExpandsAsDynamicPromptsCombinatorialGenerator) {
  std::ifstream in(kDir / "dynamic_prompts_cases.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const Wildcards wildcards = wildcard_folder(kDir / golden["wildcards"].get<std::string>());
  ASSERT_GE(golden["cases"].size(), 20u);
  for (const nlohmann::json& c : golden["cases"]) {
    const std::string templ = c["template"];
    SCOPED_TRACE(templ);
    EXPECT_EQ(expand_dynamic_prompt(templ, wildcards, c["max_prompts"].get<size_t>()),
              c["expected"].get<std::vector<std::string>>());
  }
}

TEST(DynamicPrompt, DrawsAsDynamicPromptsRandomGenerator) {
  std::ifstream in(kDir / "random_prompts_cases.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const Wildcards wildcards = wildcard_folder(kDir / golden["wildcards"].get<std::string>());
  ASSERT_GE(golden["cases"].size(), 25u);
  ASSERT_GE(golden["seeds"].size(), 10u);
  for (const nlohmann::json& c : golden["cases"]) {
    const std::string templ = c["template"];
    SCOPED_TRACE(templ);
    // Each seed alone, as sample_dynamic_prompts numbers them from the first.
    for (size_t i = 0; i < golden["seeds"].size(); ++i) {
      const uint64_t seed = std::stoull(golden["seeds"][i].get<std::string>());
      EXPECT_EQ(sample_dynamic_prompts(templ, wildcards, seed, 1),
                std::vector<std::string>{c["expected"][i].get<std::string>()})
          << "seed " << seed;
    }
  }
  // Consecutive seeds in one call (the golden's first eight are 0 to 7).
  const nlohmann::json& first = golden["cases"][1];
  const auto expected = first["expected"].get<std::vector<std::string>>();
  EXPECT_EQ(sample_dynamic_prompts(first["template"].get<std::string>(), wildcards, 0, 8),
            std::vector<std::string>(expected.begin(), expected.begin() + 8));
}

// Variables, wraps, comments and options that repeat one another (syntax_cases.json): written
// cases and 100-odd made at random from the syntax, each in both modes; in random mode six prompts
// from one call, as the extension draws a batch (an immediate variable is drawn once for all).
TEST(DynamicPrompt, VariablesWrapsAndCommentsAsTheLibrary) {
  std::ifstream in(kDir / "syntax_cases.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const Wildcards wildcards = wildcard_folder(kDir / golden["wildcards"].get<std::string>());
  const auto max_prompts = golden["max_prompts"].get<size_t>();
  size_t generated = 0;
  for (const nlohmann::json& c : golden["cases"]) {
    expect_both_modes_as_library(c, wildcards, max_prompts);
    generated += c["source"] == "generated";
  }
  EXPECT_GE(golden["cases"].size(), 140u);
  EXPECT_GE(generated, 100u);
}

// Structured wildcard files (structured_cases.json): .yaml and .json entries named by their keys
// beside a text file, YAML 1.1's typed scalars passed over as the library passes them, weights
// ("2::x", {text, weight}) repeating values in combinatorial mode and drawing them (ten at a time)
// in random mode, twelve prompts from one call.
TEST(DynamicPrompt, StructuredWildcardFilesAsTheLibrary) {
  std::ifstream in(kDir / "structured_cases.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const Wildcards wildcards = wildcard_folder(kDir / golden["wildcards"].get<std::string>());
  ASSERT_GE(golden["cases"].size(), 15u);
  for (const nlohmann::json& c : golden["cases"])
    expect_both_modes_as_library(c, wildcards, golden["max_prompts"].get<size_t>());
}

TEST(DynamicPrompt, MalformedStructuredFilesAreNamed) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("zflow_test_structured_wildcards_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "broken.yaml") << "colors: [red, blue\n";
  EXPECT_NE(
      test::error_of([&] { wildcard_folder(dir); }).find("broken.yaml: not valid YAML at line"),
      std::string::npos);
  std::filesystem::remove(dir / "broken.yaml");
  std::ofstream(dir / "broken.json") << "{\"colors\": [\"red\",}";
  EXPECT_NE(test::error_of([&] { wildcard_folder(dir); }).find("broken.json: not valid JSON"),
            std::string::npos);
  std::filesystem::remove(dir / "broken.json");
  // Nesting past 256 levels, and YAML aliases that repeat a list 10^8 times, are refused.
  std::ofstream(dir / "deep.json") << std::string(100000, '[') << std::string(100000, ']');
  EXPECT_NE(test::error_of([&] { wildcard_folder(dir); }).find("deep.json: nests over 256 levels"),
            std::string::npos);
  std::filesystem::remove(dir / "deep.json");
  std::ofstream bomb(dir / "bomb.yaml");
  bomb << "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  for (char level = 'b'; level <= 'h'; ++level) {
    const char below = static_cast<char>(level - 1);
    bomb << level << ": &" << level << " [";
    for (int k = 0; k < 10; ++k) bomb << (k ? ", *" : "*") << below;
    bomb << "]\n";
  }
  bomb.close();
  EXPECT_NE(test::error_of([&] {
              wildcard_folder(dir);
            }).find("bomb.yaml: holds over 1048576 values (with its aliases followed)"),
            std::string::npos);
  std::filesystem::remove(dir / "bomb.yaml");
  std::ofstream(dir / "heavy.yaml") << "w: [1e9::x]\n";
  EXPECT_NE(
      test::error_of([&] {
        expand_dynamic_prompt("__w__", wildcard_folder(dir), 10);
      }).find("wildcard __w__: value 'x' weighs 1000000000; a weight up to 10000 is expected"),
      std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(DynamicPrompt, ErrorsNameThePlace) {
  const Wildcards wildcards = wildcard_folder(kDir / "wildcards");
  const auto error = [&](std::string_view templ) {
    return test::error_of([&] { expand_dynamic_prompt(templ, wildcards, 100); });
  };
  EXPECT_NE(error("a {red|blue cat").find("the '{' at character 3 is never closed"),
            std::string::npos);
  EXPECT_NE(error("{$$a|b}").find("the count at character 2"), std::string::npos);
  EXPECT_NE(error(std::string(100, '{')).find("braces nest more than 64 deep at character 65"),
            std::string::npos);
  EXPECT_NE(error("{3-1$$a|b}").find("runs from 3 down to 1"), std::string::npos);
  EXPECT_NE(error("x {~a|b}")
                .find("the sampling method '~' at character 4 is not supported in "
                      "combinatorial mode"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] {
              sample_dynamic_prompts("{@a|b}", wildcards, 1, 1);
            }).find("the sampling method '@' at character 2 is not supported in random mode"),
            std::string::npos);
  EXPECT_EQ(expand_dynamic_prompt("{!a|b}", wildcards, 10), (std::vector<std::string>{"a", "b"}));
  EXPECT_NE(
      error("a __enamels__ cup").find("wildcard __enamels__: no file enamels.txt (or matching it)"),
      std::string::npos);
  EXPECT_NE(error("__../secret__").find("a name inside the wildcard folder"), std::string::npos);
  EXPECT_NE(test::error_of([] {
              expand_dynamic_prompt("__a__", {}, 10);
            }).find("__a__: no wildcard folder was given"),
            std::string::npos);
  // Wildcards that refer back to themselves stop instead of recursing.
  const Wildcards loop = [](const std::string& name) {
    return std::vector<WildcardValue>{{name == "a" ? "x __b__" : "y __a__"}};
  };
  EXPECT_NE(test::error_of([&] {
              expand_dynamic_prompt("__a__", loop, 10);
            }).find("wildcard __a__ refers to itself (through a, b)"),
            std::string::npos);
  // Wildcards that double the prompt at each level stop at 64 Ki characters in both modes.
  const Wildcards doubling = [](const std::string& name) {
    const int level = std::stoi(name.substr(1));
    const std::string below = fmt::format("__w{}__", level - 1);
    return std::vector<WildcardValue>{{level == 0 ? "ab" : below + below}};
  };
  for (const auto& make :
       {std::function([&] { expand_dynamic_prompt("__w16__", doubling, 2); }),
        std::function([&] { sample_dynamic_prompts("__w16__", doubling, 1, 1); })})
    EXPECT_NE(test::error_of(make).find("a prompt longer than 65536 characters"),
              std::string::npos);
  EXPECT_EQ(expand_dynamic_prompt("__w15__", doubling, 2).front().size(), 65536u);
  // Variables: unset, read inside their own value, set inside braces, malformed.
  EXPECT_NE(error("a ${tone} cup").find("variable ${tone} is not set"), std::string::npos);
  EXPECT_NE(error("${a={x|${a}}}${a}").find("variable ${a} refers to itself"), std::string::npos);
  EXPECT_NE(error("{${a=b}|c}").find("variable ${a} is set inside braces at character 2"),
            std::string::npos);
  EXPECT_NE(error("x ${=b}").find("the '${' at character 3 is not followed by a variable name"),
            std::string::npos);
  EXPECT_NE(error("${a=b").find("the '${' at character 1 is never closed"), std::string::npos);
  EXPECT_NE(error("${a=b|c}").find("the '${' at character 1 needs a '}' at character 6"),
            std::string::npos);
  EXPECT_NE(error("%{a...b}").find("the '%{' at character 1 has no '$$'"), std::string::npos);
  EXPECT_NE(test::error_of([&] {
              sample_dynamic_prompts("x ${tone}", wildcards, 1, 1);
            }).find("variable ${tone} is not set"),
            std::string::npos);
  EXPECT_NE(error("{2$$a|{a}}").find("the template stands for no prompt"), std::string::npos);
  // Lone '$' and '%' are text (the library refuses them), as are wildcards' underscores that
  // enclose no name.
  EXPECT_EQ(expand_dynamic_prompt("100% cotton, $5 {a|b}", wildcards, 10),
            (std::vector<std::string>{"100% cotton, $5 a", "100% cotton, $5 b"}));
  // Options that always come out alike: every combination is dropped, and past 2^18 the
  // template is an error, not a hang (the library grinds on). Each __w__ is one of four lines
  // that all read "a", so the first option stands for 4^11 prompts "aaaaaaaaaaa".
  const Wildcards alike = [](const std::string&) {
    return std::vector<WildcardValue>{{"a"}, {"{a}"}, {"{a|a}"}, {"a{}"}};
  };
  std::string eleven;
  for (int k = 0; k < 11; ++k) eleven += "__w__";
  EXPECT_NE(test::error_of([&] {
              expand_dynamic_prompt("{2$$" + eleven + "|{" + eleven + "}}", alike, 10);
            }).find("dropped over 262144 combinations of options"),
            std::string::npos);
  // Underscores that do not enclose a name, and an empty template, are text.
  EXPECT_EQ(expand_dynamic_prompt("snake__ case __x", wildcards, 10),
            (std::vector<std::string>{"snake__ case __x"}));
  EXPECT_EQ(expand_dynamic_prompt("", wildcards, 10), (std::vector<std::string>{""}));
}

}  // namespace
}  // namespace zflow::text
