// Dynamic Prompts templates in server jobs (server/job_prompts.h): random mode gives image k
// the prompt the extension's library draws for seed + k (its goldens, random_prompts_cases.json),
// a batch of variations one frozen prompt; combinatorial mode every prompt with every negative
// prompt, an image each, within max generations, repeats and the server's batch limit. Then how
// A1111's alwayson_scripts entry and the native field choose the mode, and what they refuse.
#include "server/job_prompts.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"
#include "text/wildcard_folder.h"

namespace zflow::server {
namespace {

using nlohmann::json;
using Mode = PromptTemplates::Mode;

const text::Wildcards kWildcards =
    text::wildcard_folder(test::fixture("dynamic_prompts/wildcards"));

json random_golden() {
  std::ifstream in(test::fixture("dynamic_prompts/random_prompts_cases.json"));
  return json::parse(in);
}

JobSpec job(std::string prompt, std::string negative, int batch, std::optional<Mode> mode) {
  JobSpec spec;
  spec.request.prompt = std::move(prompt);
  spec.request.negative_prompt = std::move(negative);
  spec.request.batch = batch;
  if (mode) spec.templates = PromptTemplates{.mode = *mode};
  return spec;
}

std::pair<int, std::string> refusal(const std::function<void()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find(e.param()), std::string::npos) << e.what();
    return {e.status(), e.param()};
  }
  return {0, ""};
}

TEST(PromptTemplates, RandomModeDrawsImageKFromSeedPlusK) {
  const json golden = random_golden();
  const json& positive = golden["cases"][1];  // seeds 0 to 7 come first
  const json& negative = golden["cases"][2];
  JobSpec spec = job(positive["template"], negative["template"], 4, Mode::Random);
  spec.request.seed = 2;
  expand_prompt_templates(spec, std::nullopt, kWildcards, {});
  const auto expected = [](const json& c) {
    return std::vector<std::string>(c["expected"].begin() + 2, c["expected"].begin() + 6);
  };
  EXPECT_EQ(spec.request.image_prompts, expected(positive));
  EXPECT_EQ(spec.request.image_negative_prompts, expected(negative));
  EXPECT_TRUE(spec.request.seed_per_image);
  EXPECT_EQ(spec.request.prompt, positive["template"]) << "the prompt stays the template";
  // Expanded once: a second call (at submission) changes nothing.
  const std::vector<std::string> first = spec.request.image_prompts;
  spec.request.seed = 5;
  expand_prompt_templates(spec, PromptTemplates{}, kWildcards, {});
  EXPECT_EQ(spec.request.image_prompts, first);

  // Variations of one seed keep the seed's prompt for all, as the extension freezes it.
  JobSpec variations = job(positive["template"], "", 3, Mode::Random);
  variations.request.seed = 6;
  variations.request.variation = pipeline::VariationSeed{11, 0.2f};
  expand_prompt_templates(variations, std::nullopt, kWildcards, {});
  EXPECT_EQ(variations.request.image_prompts,
            std::vector<std::string>(3, positive["expected"][6].get<std::string>()));
}

TEST(PromptTemplates, ServerDefaultAppliesWhereTheJobSaysNothing) {
  JobSpec plain = job("a {red|blue} fox", "", 2, std::nullopt);
  expand_prompt_templates(plain, std::nullopt, {}, {});
  EXPECT_TRUE(plain.request.image_prompts.empty());
  JobSpec by_default = plain;
  by_default.templates.reset();
  expand_prompt_templates(by_default, PromptTemplates{}, {}, {});
  EXPECT_EQ(by_default.request.image_prompts.size(), 2u);
  JobSpec off = job("a {red|blue} fox", "", 2, Mode::Off);
  expand_prompt_templates(off, PromptTemplates{}, {}, {});
  EXPECT_TRUE(off.request.image_prompts.empty());
}

TEST(PromptTemplates, CombinatorialModeMakesEveryPairWithinTheLimits) {
  JobSpec spec = job("a {red|blue} {mug|bowl}", "{blurry|dark}", 1, Mode::Combinatorial);
  expand_prompt_templates(spec, std::nullopt, {}, {});
  EXPECT_EQ(spec.request.batch, 8);
  EXPECT_EQ(spec.request.image_prompts,
            (std::vector<std::string>{"a red mug", "a red mug", "a red bowl", "a red bowl",
                                      "a blue mug", "a blue mug", "a blue bowl", "a blue bowl"}));
  EXPECT_EQ(spec.request.image_negative_prompts[0], "blurry");
  EXPECT_EQ(spec.request.image_negative_prompts[1], "dark");

  JobSpec capped = job("a {red|blue} {mug|bowl}", "", 1, std::nullopt);
  capped.templates = PromptTemplates{.mode = Mode::Combinatorial, .max_prompts = 3, .repeats = 2};
  expand_prompt_templates(capped, std::nullopt, {}, {});
  EXPECT_EQ(capped.request.image_prompts,
            (std::vector<std::string>{"a red mug", "a red bowl", "a blue mug", "a red mug",
                                      "a red bowl", "a blue mug"}));

  JobSpec too_many = job("{a|b|c} {d|e|f}", "", 1, Mode::Combinatorial);
  EXPECT_EQ(refusal([&] { expand_prompt_templates(too_many, std::nullopt, {}, {}); }),
            (std::pair<int, std::string>{400, "prompt"}));
  JobSpec broken = job("ok", "a {b", 1, Mode::Random);
  EXPECT_EQ(refusal([&] { expand_prompt_templates(broken, std::nullopt, {}, {}); }),
            (std::pair<int, std::string>{400, "negative_prompt"}));
  JobSpec no_folder = job("__colors__", "", 1, Mode::Random);
  EXPECT_EQ(refusal([&] { expand_prompt_templates(no_folder, std::nullopt, {}, {}); }),
            (std::pair<int, std::string>{400, "prompt"}));
}

TEST(PromptTemplates, A1111ExtensionArgumentsAndTheNativeField) {
  const auto a1111 = [](json args) {
    return parse_a1111(json{{"prompt", "p"},
                            {"alwayson_scripts", {{"Dynamic Prompts v2.17.1", {{"args", args}}}}}},
                       false, {}, "m")
        .templates;
  };
  EXPECT_EQ(a1111(json::array())->mode, Mode::Random) << "enabled by default";
  EXPECT_EQ(a1111({false})->mode, Mode::Off);
  const auto combinatorial = a1111({true, true, 2, false, false, false, 1.1, 1.5, 100, 0.7, false,
                                    false, false, false, false, 5});
  ASSERT_TRUE(combinatorial);
  EXPECT_EQ(combinatorial->mode, Mode::Combinatorial);
  EXPECT_EQ(combinatorial->repeats, 2);
  EXPECT_EQ(combinatorial->max_prompts, 5u);
  EXPECT_EQ(refusal([&] {
              a1111({true, false, 1, true});
            }),
            (std::pair<int, std::string>{400, "alwayson_scripts.Dynamic Prompts v2.17.1.args[3]"}));
  EXPECT_EQ(refusal([&] { a1111({"yes"}); }),
            (std::pair<int, std::string>{400, "alwayson_scripts.Dynamic Prompts v2.17.1.args[0]"}));
  EXPECT_FALSE(parse_a1111(json{{"prompt", "p"}}, false, {}, "m").templates);

  EXPECT_EQ(parse_native_job(json{{"prompt", "p"}, {"dynamic_prompts", "combinatorial"}}, {}, "m")
                .templates->mode,
            Mode::Combinatorial);
  EXPECT_EQ(refusal([] {
              parse_native_job(json{{"prompt", "p"}, {"dynamic_prompts", "all"}}, {}, "m");
            }),
            (std::pair<int, std::string>{400, "dynamic_prompts"}));
}

}  // namespace
}  // namespace zflow::server
