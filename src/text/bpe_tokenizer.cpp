#include "text/bpe_tokenizer.h"

#include "core/error.h"
#include "text/bpe_model.h"
#include "text/byte_level.h"
#include "text/unicode_normalize.h"
#include "text/utf8.h"

namespace zflow::text {

BpeTokenizer::BpeTokenizer(std::unique_ptr<BpeModel> model, std::vector<AddedToken> added_tokens,
                           Normalization normalization, const std::vector<SplitRule>& splits)
    : model_(std::move(model)),
      added_tokens_(std::move(added_tokens)),
      raw_matcher_(added_tokens_, false),
      normalized_matcher_(added_tokens_, true),
      normalization_(normalization) {
  size_t ids = model_->id_count();
  for (const AddedToken& token : added_tokens_) {
    ZF_CHECK(token.id >= 0, "[tokenizer] added token '{}' has a negative id {}", token.content,
             token.id);
    ids = std::max(ids, static_cast<size_t>(token.id) + 1);
  }
  added_index_.assign(ids, -1);
  for (size_t i = 0; i < added_tokens_.size(); ++i) {
    added_index_[added_tokens_[i].id] = static_cast<int32_t>(i);
  }
  for (const SplitRule& rule : splits)
    splits_.emplace_back(rule.pattern, rule.behavior, rule.invert);
}

BpeTokenizer::~BpeTokenizer() = default;
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  require_valid_utf8(text);
  std::vector<int32_t> ids;
  std::vector<Segment> raw_segments;
  raw_matcher_.split(text, raw_segments);

  std::vector<Segment> segments;
  std::vector<std::string_view> pieces, next_pieces;
  for (const Segment& raw : raw_segments) {
    if (raw.id >= 0) {
      ids.push_back(raw.id);
      continue;
    }
    std::string normalized = normalization_.nfc ? nfc(raw.text) : std::string(raw.text);
    if (normalization_.collapse_whitespace) normalized = collapse_whitespace(normalized);
    if (normalization_.lowercase) normalized = lowercase(normalized);
    segments.clear();
    normalized_matcher_.split(normalized, segments);
    for (const Segment& segment : segments) {
      if (segment.id >= 0) {
        ids.push_back(segment.id);
        continue;
      }
      pieces.assign(1, segment.text);
      for (const RegexSplit& split : splits_) {
        next_pieces.clear();
        split.split(pieces, next_pieces);
        pieces.swap(next_pieces);
      }
      for (const std::string_view piece : pieces) model_->encode_piece(piece, ids);
    }
  }
  return ids;
}

const AddedToken* BpeTokenizer::added_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= added_index_.size() || added_index_[id] < 0)
    return nullptr;
  return &added_tokens_[added_index_[id]];
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  const ByteLevelAlphabet& alphabet = byte_level_alphabet();
  std::string bytes;
  for (const int32_t id : ids) {
    if (const AddedToken* added = added_token(id)) {
      if (!(skip_special && added->special)) bytes += added->content;
      continue;
    }
    const std::string* token = model_->id_to_token(id);
    if (!token)
      fail("[tokenizer] decode: id {} has no token (vocabulary size {})", id, vocab_size());
    // Map the symbols back to bytes; a token with a symbol outside the byte-level alphabet is
    // kept as written, as HF's ByteLevel decoder does.
    std::string token_bytes;
    bool byte_level = true;
    for (size_t pos = 0; pos < token->size() && byte_level;) {
      const DecodedChar c = decode_utf8(*token, pos);
      const auto b = alphabet.byte_of(c.code_point);
      if (b) token_bytes.push_back(static_cast<char>(*b));
      byte_level = b.has_value();
      pos += c.length;
    }
    bytes += byte_level ? token_bytes : *token;
  }
  return repair_utf8(bytes);
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  for (const AddedToken& added : added_tokens_) {
    if (added.content == token) return added.id;
  }
  return model_->token_to_id(token);
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* added = added_token(id)) return added->content;
  const std::string* token = model_->id_to_token(id);
  if (!token) fail("[tokenizer] id {} has no token (vocabulary size {})", id, vocab_size());
  return *token;
}

size_t BpeTokenizer::vocab_size() const {
  return added_index_.size();
}

}  // namespace zflow::text
