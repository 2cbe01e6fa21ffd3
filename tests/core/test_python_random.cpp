// zflow::PythonRandom against CPython's random.Random (tools/golden/make_dynamic_prompts.py,
// python_random.json): for seeds from 0 to 2^64 - 1, the raw words after seeding, then the
// draws Dynamic Prompts' random mode makes (getrandbits, randrange, randint, random, choices by
// weight), each equal exactly.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

#include "core/python_random.h"
#include "test_util.h"

namespace zflow {
namespace {

TEST(PythonRandom, DrawsAsCPythonRandom) {
  std::ifstream in(test::fixture("dynamic_prompts") / "python_random.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_GE(golden["cases"].size(), 9u);
  for (const nlohmann::json& c : golden["cases"]) {
    const uint64_t seed = std::stoull(c["seed"].get<std::string>());
    SCOPED_TRACE(seed);
    PythonRandom r(seed);
    for (const auto& word : c["words"]) EXPECT_EQ(r.getrandbits(32), word.get<uint32_t>());

    r.seed(seed);
    const nlohmann::json& d = c["draws"];
    const int bits[] = {1, 5, 17, 31, 32};
    for (size_t i = 0; i < std::size(bits); ++i)
      EXPECT_EQ(r.getrandbits(bits[i]), d["bits"][i].get<uint32_t>());
    const uint64_t below[] = {1, 1, 2, 3, 7, 1000, (1ull << 31) + 3, (1ull << 32) - 1};
    for (size_t i = 0; i < std::size(below); ++i)
      EXPECT_EQ(r.randbelow(below[i]), d["below"][i].get<uint64_t>());
    const int64_t ranges[][2] = {{1, 1}, {0, 0}, {0, 1}, {2, 4}, {-3, 3}};
    for (size_t i = 0; i < std::size(ranges); ++i)
      EXPECT_EQ(r.randint(ranges[i][0], ranges[i][1]), d["randint"][i].get<int64_t>());
    for (const auto& value : d["random"]) EXPECT_EQ(r.random(), value.get<double>());
    const std::vector<std::vector<double>> weights = {
        {1.0, 1.0}, {0.5, 2.0, 1.5}, {3.0, 0.0, 1.0}, {0.0, 1e-300, 0.0}, std::vector(9, 1.0)};
    for (size_t i = 0; i < weights.size(); ++i)
      EXPECT_EQ(r.choices(weights[i]), d["choices"][i].get<size_t>());
  }
}

TEST(PythonRandom, RefusesWhatPythonRefuses) {
  PythonRandom r(1);
  EXPECT_NE(test::error_of([&] { r.randint(2, 1); }).find("randint(2, 1): an empty range"),
            std::string::npos);
  const std::vector<double> zero = {0.0, 0.0};
  EXPECT_NE(test::error_of([&] { r.choices(zero); }).find("the weights sum to 0"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow
