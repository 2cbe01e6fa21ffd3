// The byte-level BPE model: a vocabulary, merge ranks, and the merge loop that turns one
// pre-tokenized piece (raw bytes) into ids. The piece's bytes are first mapped to the
// byte-level alphabet (text/byte_level.h), one symbol per byte; then the adjacent pair with the
// lowest merge rank is merged, ties going to the leftmost pair, until no pair has a merge.
// This is the order HF tokenizers' BPE uses (a heap of (rank, position)).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace zflow::text {

// std::string keys looked up by std::string_view without a copy.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// (token, id) pairs as a vocabulary file lists them.
using VocabEntries = std::vector<std::pair<std::string, int32_t>>;

class BpeModel {
 public:
  // merges in rank order (rank = index). source names the file(s) in error messages: a merge
  // whose parts or result are not in the vocabulary is an error, as in HF.
  // ignore_merges: a piece that is itself in the vocabulary maps to that one id (HF option).
  // Two tokens with one id are an error.
  // end_of_word_suffix (HF BPE option, CLIP: "</w>"): the last symbol of each piece is the
  // byte's symbol with this suffix appended, so word-final pieces get their own tokens.
  BpeModel(VocabEntries vocab, const std::vector<std::pair<std::string, std::string>>& merges,
           bool ignore_merges, std::string_view source, std::string_view end_of_word_suffix = {});

  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one piece, given as raw (not yet byte-mapped) bytes.
  void encode_piece(std::string_view bytes, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // The token string (in the byte-level alphabet), or nullptr for an id with no token.
  const std::string* id_to_token(int32_t id) const;
  // One past the largest id in the vocabulary.
  size_t id_count() const { return id_to_token_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const Merge* find_merge(int32_t left, int32_t right) const;
  void merge_symbols(std::vector<int32_t>& symbols) const;

  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string_view, int32_t> vocab_;  // views into id_to_token_
  std::vector<bool> has_token_;
  std::array<int32_t, 256> byte_ids_;  // id of each byte's symbol, -1 if not in the vocabulary
  std::array<int32_t, 256>
      last_byte_ids_;  // the same with end_of_word_suffix (= byte_ids_ if none)
  std::string end_of_word_suffix_;
  std::unordered_map<uint64_t, Merge> merges_;
  bool ignore_merges_;

  // Results for pieces seen before (prompts repeat words). Bounded, like HF's BPE cache.
  static constexpr size_t kCacheCapacity = 20000;
  static constexpr size_t kCacheMaxPieceBytes = 128;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace zflow::text
