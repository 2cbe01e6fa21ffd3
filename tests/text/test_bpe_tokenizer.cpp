// The byte-level BPE tokenizer against Hugging Face tokenizers on the real Qwen3 files: ids must
// be equal (exactly: a token id has no tolerance) for every golden case, from tokenizer.json
// and from vocab.json + merges.txt; decoding must give HF's decoded text (= NFC of the input).
#include <atomic>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "text/bpe_tokenizer.h"
#include "text/unicode_normalize.h"
#include "tokenizer_fixture.h"

namespace zflow {
namespace {

using test::qwen3_cases;
using test::qwen3_tokenizer;
using test::qwen3_tokenizer_json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Every mismatch is reported with its text, but at most a few in full.
void expect_golden_ids(const text::BpeTokenizer& tokenizer) {
  int checked = 0, failed = 0;
  for (const auto& c : qwen3_cases().at("cases")) {
    const std::string input = c.at("text");
    const auto expected = c.at("ids").get<std::vector<int32_t>>();
    const auto ids = tokenizer.encode(input);
    ++checked;
    if (ids != expected) {
      ++failed;
      if (failed <= 5) {
        ADD_FAILURE() << "text " << nlohmann::json(input).dump() << "\n  got      "
                      << nlohmann::json(ids).dump() << "\n  expected "
                      << nlohmann::json(expected).dump();
      }
    }
  }
  EXPECT_EQ(failed, 0) << "of " << checked << " cases";
  EXPECT_GE(checked, 300);
}

TEST(BpeTokenizer, GoldenIdsFromTokenizerJson) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  expect_golden_ids(qwen3_tokenizer());
}

TEST(BpeTokenizer, GoldenIdsFromVocabAndMerges) {
  ZF_REQUIRE_ASSET(test::shared_asset("qwen_tokenizer/vocab.json"));
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  // vocab.json + merges.txt lack the added tokens; the facts take them from tokenizer.json.
  text::VocabMergesOptions options;
  options.added_tokens = qwen3_tokenizer().added_tokens();
  const auto tokenizer = text::BpeTokenizer::from_vocab_merges(
      test::shared_asset("qwen_tokenizer/vocab.json"),
      test::shared_asset("qwen_tokenizer/merges.txt"), options);
  EXPECT_EQ(tokenizer.vocab_size(), 151669u);
  expect_golden_ids(tokenizer);
}

TEST(BpeTokenizer, DecodeGivesReferenceText) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  int failed = 0;
  for (const auto& c : qwen3_cases().at("cases")) {
    const auto ids = c.at("ids").get<std::vector<int32_t>>();
    const std::string decoded = qwen3_tokenizer().decode(ids);
    if (decoded != c.at("decoded").get<std::string>() && ++failed <= 5) {
      ADD_FAILURE() << "decode of " << c.at("ids").dump() << " is "
                    << nlohmann::json(decoded).dump() << ", expected " << c.at("decoded").dump();
    }
    // The reference's decoded text is NFC(text) (the generator checks it), so this is
    // decode(encode(s)) == NFC(s) through our own NFC.
    EXPECT_EQ(text::nfc(c.at("text").get<std::string>()), c.at("decoded").get<std::string>());
  }
  EXPECT_EQ(failed, 0);
}

TEST(BpeTokenizer, KnownIds) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto& t = qwen3_tokenizer();
  // /work/shared/facts/zimage.md §3.3-3.4.
  EXPECT_EQ(t.token_to_id("<|endoftext|>"), 151643);
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 151644);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 151645);
  EXPECT_EQ(t.token_to_id("<think>"), 151667);
  EXPECT_EQ(t.token_to_id("</think>"), 151668);
  EXPECT_EQ(t.token_to_id("user"), 872);
  EXPECT_EQ(t.token_to_id("assistant"), 77091);
  EXPECT_EQ(t.token_to_id("Ċ"), 198);  // "\n" in the byte-level alphabet
  EXPECT_EQ(t.token_to_id("no such token"), std::nullopt);
  EXPECT_EQ(t.id_to_token(198), "Ċ");
  EXPECT_EQ(t.id_to_token(151644), "<|im_start|>");
  EXPECT_EQ(t.vocab_size(), 151669u);
  EXPECT_NE(error_of([&] { t.id_to_token(151669); }).find("id 151669 has no token"),
            std::string::npos);
  EXPECT_NE(error_of([&] { t.decode(std::vector<int32_t>{-1}); }).find("id -1 has no token"),
            std::string::npos);
}

TEST(BpeTokenizer, DecodeSkipsSpecialsOnRequest) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto& t = qwen3_tokenizer();
  // <|im_start|> is special; <think> is an added token that is not special.
  const auto ids = t.encode("<|im_start|>hi<think>");
  EXPECT_EQ(t.decode(ids, /*skip_special=*/true), "hi<think>");
  EXPECT_EQ(t.decode(ids), "<|im_start|>hi<think>");
}

TEST(BpeTokenizer, DecodeOfHalfACharacterIsReplacementChar) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto& t = qwen3_tokenizer();
  // "一" is E4 B8 80; the byte-level symbols of E4 and B8 are 'ä' and '¸' (bytes_to_unicode maps
  // printable Latin-1 bytes to themselves).
  const auto e4 = t.token_to_id("\u00e4");
  const auto b8 = t.token_to_id("\u00b8");
  ASSERT_TRUE(e4 && b8);
  EXPECT_EQ(t.decode(std::vector<int32_t>{*e4, *b8}), "\uFFFD");
}

TEST(BpeTokenizer, InvalidUtf8IsAnError) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto& t = qwen3_tokenizer();
  const std::pair<std::string, int> cases[] = {
      {"abc\xff", 3},            // a byte that never occurs in UTF-8
      {"ok \xc0\xaf", 3},        // overlong '/'
      {"x\xed\xa0\x80", 1},      // a surrogate
      {"\xe4\xb8", 0},           // truncated at the end
      {"\xe4\xb8 \xe4", 0},      // truncated before a space
      {"\xf4\x90\x80\x80", 0},   // past U+10FFFF
      {"\x80 continuation", 0},  // a lone continuation byte
  };
  for (const auto& [input, byte] : cases) {
    const std::string message = error_of([&] { t.encode(input); });
    EXPECT_NE(message.find(fmt::format("[tokenizer] input is not valid UTF-8 at byte {}", byte)),
              std::string::npos)
        << message;
  }
}

TEST(BpeTokenizer, MissingOrMalformedFileNamesIt) {
  const std::filesystem::path missing = "/nonexistent/folder/tokenizer.json";
  EXPECT_NE(
      error_of([&] { text::BpeTokenizer::from_tokenizer_json(missing); }).find(missing.string()),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              text::load_bpe_tokenizer("/nonexistent/folder");
            }).find("/nonexistent/folder"),
            std::string::npos);

  const auto dir = std::filesystem::temp_directory_path() / "zflow_test_tokenizer_files";
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir / name) << content;
    return dir / name;
  };
  struct Case {
    std::string content, expected;
  } cases[] = {
      {"{ not json", "not valid JSON"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})",
       "model.merges is missing"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}, "normalizer": {"type": "Lowercase"},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})",
       "unsupported normalizer 'Lowercase'"},
      {R"({"model": {"type": "WordPiece", "vocab": {}},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})",
       "model type 'WordPiece' is not BPE"},
      {R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]},
          "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})",
       "merge 0 'a b' uses a token that is not in the vocabulary"},
      {R"({"model": {"type": "BPE", "vocab": {}, "merges": []},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"},
            {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}})",
       "split regex does not compile"},
  };
  for (const auto& c : cases) {
    const auto path = write("tokenizer.json", c.content);
    const std::string message = error_of([&] { text::BpeTokenizer::from_tokenizer_json(path); });
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
  }
  const auto vocab = write("vocab.json", R"({"a": 0, "b": 1, "ab": 2})");
  const auto merges = write("merges.txt", "#version: 0.2\na b c\n");
  const std::string message =
      error_of([&] { text::BpeTokenizer::from_vocab_merges(vocab, merges, {}); });
  EXPECT_NE(message.find(merges.string() + ": line 2"), std::string::npos) << message;
  std::filesystem::remove_all(dir);
}

// A hand-made vocabulary where the answer follows from the merge rules alone.
TEST(BpeTokenizer, MergesByRankLeftmostFirst) {
  const auto dir = std::filesystem::temp_directory_path() / "zflow_test_tokenizer_tiny";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "vocab.json") << R"({"a": 0, "b": 1, "aa": 2, "ab": 3, "aab": 4, "Ġ": 5})";
  std::ofstream(dir / "merges.txt") << "a b\na a\naa b\n";
  text::VocabMergesOptions options;
  options.nfc = false;
  const auto t =
      text::BpeTokenizer::from_vocab_merges(dir / "vocab.json", dir / "merges.txt", options);
  // "aab": rank 0 merges a+b first -> a, ab; no merge "a ab" -> [0, 3] (not aa+b).
  EXPECT_EQ(t.encode("aab"), (std::vector<int32_t>{0, 3}));
  // "aaa": a+a at positions 0 and 1 tie on rank; the leftmost wins -> aa, a.
  EXPECT_EQ(t.encode("aaa"), (std::vector<int32_t>{2, 0}));
  // A byte with no symbol in the vocabulary ('c') is dropped before merging, as in HF without an
  // unk token, so its neighbours meet and merge.
  EXPECT_EQ(t.encode("acb"), (std::vector<int32_t>{3}));
  EXPECT_EQ(t.encode(" a"), (std::vector<int32_t>{5, 0}));
  std::filesystem::remove_all(dir);
}

// encode shares its BPE cache between threads; results must not depend on interleaving.
TEST(BpeTokenizer, EncodeFromManyThreads) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto tokenizer = text::BpeTokenizer::from_tokenizer_json(qwen3_tokenizer_json());
  std::atomic<int> mismatches = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const auto& cases = qwen3_cases().at("cases");
      for (size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[(i * 7 + t * 101) % cases.size()];  // a different order per thread
        if (tokenizer.encode(c.at("text").get<std::string>()) !=
            c.at("ids").get<std::vector<int32_t>>()) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(mismatches, 0);
}

TEST(BpeTokenizer, LoadsFromAFolder) {
  ZF_REQUIRE_ASSET(qwen3_tokenizer_json());
  const auto t = text::load_bpe_tokenizer(test::shared_asset("qwen3_tokenizer"));
  EXPECT_EQ(t.encode("Hello world"), qwen3_tokenizer().encode("Hello world"));
}

}  // namespace
}  // namespace zflow
