// A1111's prompt styles: styles.csv read as A1111 reads it, Python's csv.DictReader
// (tools/golden/make_prompt_styles.py: quoting, doubled quotes, line breaks in fields, a
// byte-order mark, comments, blank and short rows, a name given twice), and styles added to a
// prompt as A1111's merge_prompts does, from its definition: "{prompt}" replaced everywhere it
// stands, else ", " and the style after the stripped prompt, empty sides left out.
#include "text/prompt_styles.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <fstream>

#include "test_util.h"

namespace zflow::text {
namespace {

const std::filesystem::path kDir = test::fixture("prompt_styles");

TEST(PromptStyles, ReadsStylesCsvAsA1111) {
  std::ifstream in(kDir / "styles_expected.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  const std::vector<PromptStyle> styles = read_prompt_styles(kDir / "styles.csv");
  ASSERT_EQ(styles.size(), golden["styles"].size());
  for (size_t i = 0; i < styles.size(); ++i) {
    const nlohmann::json& g = golden["styles"][i];
    EXPECT_EQ(styles[i].name, g["name"]);
    EXPECT_EQ(styles[i].prompt, g["prompt"]) << styles[i].name;
    EXPECT_EQ(styles[i].negative_prompt, g["negative_prompt"]) << styles[i].name;
  }
}

TEST(PromptStyles, AddsAStyleAsMergePrompts) {
  EXPECT_EQ(with_style("cinematic still of {prompt}, film grain", "a red mug"),
            "cinematic still of a red mug, film grain");
  EXPECT_EQ(with_style("{prompt} and {prompt}", " x "), " x  and  x ");
  EXPECT_EQ(with_style("studio lighting ", "  a red mug "), "a red mug, studio lighting");
  EXPECT_EQ(with_style("studio lighting", " "), "studio lighting");
  EXPECT_EQ(with_style("", " a red mug"), "a red mug");
  // Styles in turn: each takes what the one before made.
  EXPECT_EQ(with_style("studio lighting", with_style("photo of {prompt}", "a mug")),
            "photo of a mug, studio lighting");
}

TEST(PromptStyles, ErrorsNameTheFile) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("zflow_test_styles_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& text) {
    std::ofstream(dir / "styles.csv") << text;
    return test::error_of([&] { read_prompt_styles(dir / "styles.csv"); });
  };
  EXPECT_NE(write("name,prompt\nA,\"open").find("styles.csv: the quote at byte 15 is never closed"),
            std::string::npos);
  EXPECT_NE(write("title,words\nA,b\n").find("the header needs the columns name and prompt"),
            std::string::npos);
  EXPECT_NE(write("").find("no header row"), std::string::npos);
  EXPECT_NE(test::error_of([&] {
              read_prompt_styles(dir / "missing.csv");
            }).find("missing.csv: cannot open the file"),
            std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace zflow::text
