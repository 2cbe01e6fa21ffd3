// The CLIP tokenizer against transformers' CLIPTokenizer on the real CLIP-L files FLUX.1 ships:
// ids must be equal (exactly: a token id has no tolerance), both unpadded and as FLUX's
// pipeline asks (truncated and padded to 77).
#include <nlohmann/json.hpp>

#include <fstream>
#include <limits>

#include "core/error.h"
#include "test_util.h"
#include "text/clip_tokenizer.h"

namespace zflow {
namespace {

const nlohmann::json& clip_cases() {
  static const nlohmann::json cases = [] {
    std::ifstream in(test::fixture("clip/clip_tokenizer_cases.json"));
    nlohmann::json j = nlohmann::json::parse(in);
    if (j.at("_meta").at("zflow_fixture_format") != "1") throw std::runtime_error("stale fixture");
    return j;
  }();
  return cases;
}

std::filesystem::path clip_folder() {
  return test::shared_asset("flux1_tokenizer/tokenizer_clip_l");
}

const text::ClipTokenizer& clip_tokenizer() {
  static const text::ClipTokenizer tokenizer = text::ClipTokenizer::load(clip_folder());
  return tokenizer;
}

// Every mismatch is counted, the first few shown in full.
void expect_golden(const char* field, size_t max_length, bool pad) {
  int checked = 0, failed = 0;
  for (const auto& c : clip_cases().at("cases")) {
    const std::string input = c.at("text");
    const auto expected = c.at(field).get<std::vector<int32_t>>();
    const auto ids = clip_tokenizer().encode(input, max_length, pad);
    ++checked;
    if (ids != expected && ++failed <= 5) {
      ADD_FAILURE() << field << " of " << nlohmann::json(input).dump() << "\n  got      "
                    << nlohmann::json(ids).dump() << "\n  expected "
                    << nlohmann::json(expected).dump();
    }
  }
  EXPECT_EQ(failed, 0) << "of " << checked << " cases";
  EXPECT_GE(checked, 200);
}

TEST(ClipTokenizer, GoldenIds) {
  ZF_REQUIRE_ASSET(clip_folder() / "vocab.json");
  expect_golden("ids", std::numeric_limits<size_t>::max(), false);
}

TEST(ClipTokenizer, GoldenIdsPaddedTo77) {
  ZF_REQUIRE_ASSET(clip_folder() / "vocab.json");
  expect_golden("padded_ids", text::kClipMaxLength, true);
}

TEST(ClipTokenizer, SpecialIds) {
  ZF_REQUIRE_ASSET(clip_folder() / "vocab.json");
  EXPECT_EQ(clip_tokenizer().bos_id(), clip_cases().at("bos_id").get<int32_t>());
  EXPECT_EQ(clip_tokenizer().eos_id(), clip_cases().at("eos_id").get<int32_t>());
  EXPECT_EQ(clip_tokenizer().pad_id(), clip_cases().at("pad_id").get<int32_t>());
}

TEST(ClipTokenizer, DecodeGivesTheNormalizedWords) {
  ZF_REQUIRE_ASSET(clip_folder() / "vocab.json");
  const auto ids = clip_tokenizer().encode("A Photo of  a CAT, isn't it?");
  // transformers: decode(ids, skip_special_tokens=True) == "a photo of a cat , isn 't it ?"
  EXPECT_EQ(clip_tokenizer().decode(ids), "a photo of a cat , isn 't it ?");
}

TEST(ClipTokenizer, AMissingFolderIsAnError) {
  ZF_REQUIRE_ASSET(clip_folder() / "vocab.json");
  try {
    (void)text::ClipTokenizer::load(clip_folder() / "no_such_folder");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no vocab.json + merges.txt"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace zflow
