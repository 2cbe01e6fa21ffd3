#include "text/t5_tokenizer.h"

#include <sentencepiece_processor.h>

#include <string>

#include "core/error.h"
#include "text/utf8.h"

namespace zflow::text {

namespace {

std::filesystem::path find_spiece_model(const std::filesystem::path& path) {
  if (!std::filesystem::is_directory(path)) return path;
  for (const char* sub : {"spiece.model", "tokenizer_2/spiece.model"}) {
    if (std::filesystem::exists(path / sub)) return path / sub;
  }
  fail("[t5_tokenizer] {}: no spiece.model in this folder or its tokenizer_2/", path.string());
}

}  // namespace

T5Tokenizer T5Tokenizer::load(const std::filesystem::path& path) {
  const std::filesystem::path file = find_spiece_model(path);
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  const auto status = sp->Load(file.string());
  if (!status.ok()) fail("[t5_tokenizer] {}: cannot load: {}", file.string(), status.ToString());
  if (sp->pad_id() != kT5PadId || sp->eos_id() != kT5EosId || sp->unk_id() != kT5UnkId) {
    fail("[t5_tokenizer] {}: special ids pad/eos/unk are {}/{}/{}, expected {}/{}/{}",
         file.string(), sp->pad_id(), sp->eos_id(), sp->unk_id(), kT5PadId, kT5EosId, kT5UnkId);
  }
  return T5Tokenizer(std::move(sp));
}

T5Tokenizer::T5Tokenizer(std::unique_ptr<sentencepiece::SentencePieceProcessor> sp)
    : sp_(std::move(sp)) {
  // T5TokenizerFast's added tokens: the three SentencePiece specials and the sentinels, all
  // matched on the raw text with no stripping.
  for (int32_t id : {kT5PadId, kT5EosId, kT5UnkId}) {
    specials_.push_back({.content = sp_->IdToPiece(id), .id = id, .special = true});
  }
  const int32_t pieces = sp_->GetPieceSize();
  for (int i = 0; i < kT5ExtraIds; ++i) {
    specials_.push_back({.content = "<extra_id_" + std::to_string(i) + ">",
                         .id = pieces + kT5ExtraIds - 1 - i,
                         .special = true});
  }
  matcher_ = AddedTokenMatcher(specials_, false);
}

T5Tokenizer::~T5Tokenizer() = default;
T5Tokenizer::T5Tokenizer(T5Tokenizer&&) noexcept = default;
T5Tokenizer& T5Tokenizer::operator=(T5Tokenizer&&) noexcept = default;

std::vector<int32_t> T5Tokenizer::encode(std::string_view text) const {
  require_valid_utf8(text);
  std::vector<Segment> segments;
  matcher_.split(text, segments);
  std::vector<int32_t> ids;
  std::vector<int> piece_ids;
  for (const Segment& segment : segments) {
    if (segment.id >= 0) {
      ids.push_back(segment.id);
      continue;
    }
    const auto status = sp_->Encode(std::string(segment.text), &piece_ids);
    if (!status.ok()) fail("[t5_tokenizer] cannot encode: {}", status.ToString());
    ids.insert(ids.end(), piece_ids.begin(), piece_ids.end());
  }
  return ids;
}

std::vector<int32_t> T5Tokenizer::encode_padded(std::string_view text, int max_length) const {
  ZF_CHECK(max_length >= 1, "[t5_tokenizer] max_length must be at least 1, got {}", max_length);
  std::vector<int32_t> ids = encode(text);
  if (ids.size() > static_cast<size_t>(max_length - 1)) ids.resize(max_length - 1);
  ids.push_back(kT5EosId);
  ids.resize(max_length, kT5PadId);
  return ids;
}

size_t T5Tokenizer::vocab_size() const {
  return sp_->GetPieceSize() + kT5ExtraIds;
}

}  // namespace zflow::text
