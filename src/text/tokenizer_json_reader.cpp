#include "text/tokenizer_json_reader.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/file_io.h"

namespace zflow::text {

namespace {

using nlohmann::json;

// SAX events build a DOM, except inside model.vocab (token -> id) and model.merges ("a b" or
// ["a", "b"]), which are collected directly.
class Reader : public nlohmann::json_sax<json> {
 public:
  explicit Reader(TokenizerJson& out) : out_(out) {}

  bool null() override { return value(json(nullptr)); }
  bool boolean(bool v) override { return value(json(v)); }
  bool number_integer(number_integer_t v) override { return number(v); }
  bool number_unsigned(number_unsigned_t v) override { return number(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(json(v)); }
  bool binary(binary_t&) override { return shape_error("binary value"); }

  bool string(string_t& v) override {
    if (mode_ == Mode::Merges) {
      out_.merges.push_back(split_merge(v));
      return true;
    }
    if (mode_ == Mode::MergePair) {
      pair_.push_back(std::move(v));
      return true;
    }
    return value(json(std::move(v)));
  }

  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }

  bool start_object(std::size_t) override {
    if (mode_ == Mode::Dom && in_model() && key_ == "vocab") {
      mode_ = Mode::Vocab;
      out_.has_vocab = true;
      return true;
    }
    if (mode_ != Mode::Dom) return shape_error("object");
    return open(json::object());
  }

  bool end_object() override {
    if (mode_ == Mode::Vocab) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    if (mode_ == Mode::Dom && in_model() && key_ == "merges") {
      mode_ = Mode::Merges;
      out_.has_merges = true;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::MergePair;
      pair_.clear();
      return true;
    }
    if (mode_ != Mode::Dom) return shape_error("array");
    return open(json::array());
  }

  bool end_array() override {
    if (mode_ == Mode::MergePair) {
      if (pair_.size() != 2) {
        fail("model.merges[{}] has {} parts, expected 2", out_.merges.size(), pair_.size());
      }
      out_.merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
      mode_ = Mode::Merges;
      return true;
    }
    if (mode_ == Mode::Merges) {
      mode_ = Mode::Dom;
      return true;
    }
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail("not valid JSON: {}", e.what());
  }

 private:
  enum class Mode { Dom, Vocab, Merges, MergePair };

  // True when the current container is the top-level "model" object.
  bool in_model() const {
    return stack_.size() == 2 && stack_[0] == &out_.rest && model_ == stack_[1];
  }

  template <typename T>
  bool number(T v) {
    if (mode_ == Mode::Vocab) {
      if (v < 0 || v > INT32_MAX) fail("model.vocab['{}'] = {} is not a valid id", key_, v);
      out_.vocab.emplace_back(std::move(key_), static_cast<int32_t>(v));
      return true;
    }
    return value(json(v));
  }

  // Places v in the current container and returns where it went.
  json* place(json v) {
    if (stack_.empty()) {
      out_.rest = std::move(v);
      return &out_.rest;
    }
    json& top = *stack_.back();
    if (top.is_object()) {
      json& slot = top[key_];
      slot = std::move(v);
      if (stack_.size() == 1 && key_ == "model") model_ = &slot;
      return &slot;
    }
    top.push_back(std::move(v));
    return &top.back();
  }

  bool value(json v) {
    if (mode_ != Mode::Dom) return shape_error(v.type_name());
    place(std::move(v));
    return true;
  }

  // Containers on the stack are never moved: only the innermost one grows.
  bool open(json container) {
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool shape_error(const char* what) {
    fail("unexpected {} in {}", what,
         mode_ == Mode::Vocab ? "model.vocab (token -> id)" : "model.merges (\"a b\" or [a, b])");
  }

  TokenizerJson& out_;
  Mode mode_ = Mode::Dom;
  std::vector<json*> stack_;
  const json* model_ = nullptr;
  std::string key_;
  std::vector<std::string> pair_;
};

// vocab.json: one object whose values are all ids.
class VocabReader : public nlohmann::json_sax<json> {
 public:
  explicit VocabReader(VocabEntries& out) : out_(out) {}

  bool number_integer(number_integer_t v) override { return id(v); }
  bool number_unsigned(number_unsigned_t v) override { return id(v); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override {
    if (++depth_ > 1) fail("'{}' maps to an object, expected an id", key_);
    return true;
  }
  bool end_object() override { return true; }
  bool null() override { return wrong("null"); }
  bool boolean(bool) override { return wrong("a boolean"); }
  bool number_float(number_float_t, const string_t&) override { return wrong("a float"); }
  bool string(string_t&) override { return wrong("a string"); }
  bool binary(binary_t&) override { return wrong("binary"); }
  bool start_array(std::size_t) override { return wrong("an array"); }
  bool end_array() override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    fail("not valid JSON: {}", e.what());
  }

 private:
  template <typename T>
  bool id(T v) {
    if (depth_ != 1 || v < 0 || v > INT32_MAX) fail("'{}' = {} is not a valid id", key_, v);
    out_.emplace_back(std::move(key_), static_cast<int32_t>(v));
    return true;
  }
  bool wrong(const char* what) {
    if (depth_ == 0) fail("expected an object of token -> id, got {}", what);
    fail("'{}' maps to {}, expected an id", key_, what);
  }

  VocabEntries& out_;
  int depth_ = 0;
  std::string key_;
};

}  // namespace

VocabEntries read_vocab_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path, "tokenizer");
  VocabEntries out;
  try {
    VocabReader reader(out);
    json::sax_parse(text, &reader);
  } catch (const Error& e) {
    fail("[tokenizer] {}: {}", path.string(), e.what());
  }
  return out;
}

std::pair<std::string, std::string> split_merge(std::string_view text) {
  const size_t space = text.find(' ');
  if (space == std::string_view::npos || text.find(' ', space + 1) != std::string_view::npos) {
    fail("merge '{}' is not two tokens separated by one space", text);
  }
  return {std::string(text.substr(0, space)), std::string(text.substr(space + 1))};
}

TokenizerJson read_tokenizer_json(const std::filesystem::path& path) {
  const std::string text = read_text_file(path, "tokenizer");
  TokenizerJson out;
  try {
    Reader reader(out);
    json::sax_parse(text, &reader);
  } catch (const Error& e) {
    fail("[tokenizer] {}: {}", path.string(), e.what());
  }
  return out;
}

}  // namespace zflow::text
