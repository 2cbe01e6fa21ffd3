#include "text/bpe_model.h"

#include <queue>

#include "core/error.h"
#include "text/byte_level.h"

namespace zflow::text {

BpeModel::BpeModel(VocabEntries vocab,
                   const std::vector<std::pair<std::string, std::string>>& merges,
                   bool ignore_merges, std::string_view source, std::string_view end_of_word_suffix)
    : end_of_word_suffix_(end_of_word_suffix), ignore_merges_(ignore_merges) {
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) {
    if (id < 0) fail("[tokenizer] {}: token '{}' has a negative id {}", source, token, id);
    max_id = std::max(max_id, id);
  }
  id_to_token_.resize(static_cast<size_t>(max_id + 1));
  has_token_.assign(id_to_token_.size(), false);
  vocab_.reserve(vocab.size());
  for (auto& [token, id] : vocab) {
    if (has_token_[id]) {
      fail("[tokenizer] {}: id {} is given to both '{}' and '{}'", source, id, id_to_token_[id],
           token);
    }
    has_token_[id] = true;
    id_to_token_[id] = std::move(token);
  }
  for (size_t id = 0; id < id_to_token_.size(); ++id) {
    if (has_token_[id] && !vocab_.emplace(id_to_token_[id], static_cast<int32_t>(id)).second) {
      fail("[tokenizer] {}: token '{}' is listed twice", source, id_to_token_[id]);
    }
  }

  const ByteLevelAlphabet& alphabet = byte_level_alphabet();
  for (int b = 0; b < 256; ++b) {
    const auto it = vocab_.find(alphabet.symbol(static_cast<uint8_t>(b)));
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
    const auto last = vocab_.find(alphabet.symbol(static_cast<uint8_t>(b)) + end_of_word_suffix_);
    last_byte_ids_[b] = last == vocab_.end() ? -1 : last->second;
  }

  merges_.reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [left, right] = merges[rank];
    joined.assign(left).append(right);
    const auto l = vocab_.find(left);
    const auto r = vocab_.find(right);
    const auto m = vocab_.find(joined);
    if (l == vocab_.end() || r == vocab_.end() || m == vocab_.end()) {
      fail("[tokenizer] {}: merge {} '{} {}' uses a token that is not in the vocabulary", source,
           rank, left, right);
    }
    // A pair listed twice keeps its last rank: HF collects the merges into a map in order.
    merges_.insert_or_assign(pair_key(l->second, r->second),
                             Merge{static_cast<int32_t>(rank), m->second});
  }
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::merge_symbols(std::vector<int32_t>& symbols) const {
  const int n = static_cast<int>(symbols.size());
  if (n < 2) return;
  // A doubly linked list over the symbols; merged-away symbols are marked dead.
  std::vector<int> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (int i = 0; i < n; ++i) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  struct Candidate {
    int32_t rank;
    int position;  // the left symbol of the pair
    int32_t result;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : position > o.position;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push = [&](int left) {
    if (left < 0 || next[left] < 0) return;
    if (const Merge* m = find_merge(symbols[left], symbols[next[left]])) {
      queue.push({m->rank, left, m->result});
    }
  };
  for (int i = 0; i + 1 < n; ++i) push(i);

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const int left = top.position;
    // Skip candidates made stale by an earlier merge of one of their symbols.
    if (!alive[left] || next[left] < 0) continue;
    const int right = next[left];
    const Merge* m = find_merge(symbols[left], symbols[right]);
    if (!m || m->result != top.result) continue;
    symbols[left] = m->result;
    alive[right] = false;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    push(prev[left]);
    push(left);
  }
  int kept = 0;
  for (int i = 0; i < n; ++i) {
    if (alive[i]) symbols[kept++] = symbols[i];
  }
  symbols.resize(kept);
}

void BpeModel::encode_piece(std::string_view bytes, std::vector<int32_t>& out) const {
  if (bytes.empty()) return;
  const bool cacheable = bytes.size() <= kCacheMaxPieceBytes;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (const auto it = cache_.find(bytes); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }

  std::vector<int32_t> symbols;
  symbols.reserve(bytes.size());
  std::string mapped;
  const ByteLevelAlphabet& alphabet = byte_level_alphabet();
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    const int32_t id = i + 1 < bytes.size() ? byte_ids_[b] : last_byte_ids_[b];
    // A byte without a symbol in the vocabulary is dropped, as HF's BPE does when it has no
    // unk token (byte-level vocabularies contain all 256, CLIP's also all 256 with "</w>").
    if (id >= 0) symbols.push_back(id);
    if (ignore_merges_) mapped += alphabet.symbol(b);
  }
  if (ignore_merges_) mapped += end_of_word_suffix_;
  const auto whole = ignore_merges_ ? vocab_.find(mapped) : vocab_.end();
  if (whole != vocab_.end()) {
    symbols.assign(1, whole->second);
  } else {
    merge_symbols(symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());

  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(bytes), std::move(symbols));
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size() || !has_token_[id]) return nullptr;
  return &id_to_token_[id];
}

}  // namespace zflow::text
