// The Qwen3 tokenizer golden cases (tools/golden/make_tokenizer.py) and the shared tokenizer,
// loaded once per test binary.
#pragma once

#include <nlohmann/json.hpp>

#include <fstream>

#include "test_util.h"
#include "text/bpe_tokenizer.h"

namespace zflow::test {

inline const nlohmann::json& qwen3_cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(fixture("tokenizer/qwen3_tokenizer_cases.json"));
    nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("_meta").at("zflow_fixture_format") != "1") throw std::runtime_error("stale fixture");
    return j;
  }();
  return cases;
}

inline std::filesystem::path qwen3_tokenizer_json() {
  return shared_asset("qwen3_tokenizer/tokenizer.json");
}

// Callers check ZF_REQUIRE_ASSET(qwen3_tokenizer_json()) first.
inline const text::BpeTokenizer& qwen3_tokenizer() {
  static const text::BpeTokenizer tokenizer =
      text::BpeTokenizer::from_tokenizer_json(qwen3_tokenizer_json());
  return tokenizer;
}

}  // namespace zflow::test
