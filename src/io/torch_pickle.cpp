#include "io/torch_pickle.h"

#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"

namespace zflow::io {
namespace {

// A value on the pickle machine's stack. Values live in the machine's arena and point at each
// other by raw pointer, so a pickle that puts a list inside itself makes no ownership cycle.
struct Value {
  enum class Kind {
    None,
    Bool,
    Int,
    Float,
    Text,
    Tuple,
    List,
    Dict,
    Global,
    Storage,
    Tensor,
    Opaque
  };
  Kind kind = Kind::None;
  int64_t number = 0;                              // Bool, Int (a Float's value is never needed)
  std::string text;                                // Text; Global: "module.name"; Storage: its key
  std::vector<Value*> items;                       // Tuple, List
  std::vector<std::pair<Value*, Value*>> entries;  // Dict
  std::optional<DType> dtype;                      // Storage (none: a type zflow lacks)
  std::string storage_type;                        // Storage: "torch.BoolStorage", ...
  Value* storage = nullptr;                        // Tensor
  int64_t offset = 0;                              // Tensor
  std::vector<int64_t> shape, strides;             // Tensor
};
using Kind = Value::Kind;

// torch's storage classes (torch/storage.py) and the dtypes they hold.
std::optional<DType> storage_dtype(const std::string& type) {
  static const std::unordered_map<std::string, DType> kTypes = {
      {"torch.FloatStorage", DType::F32},     {"torch.HalfStorage", DType::F16},
      {"torch.BFloat16Storage", DType::BF16}, {"torch.DoubleStorage", DType::F64},
      {"torch.LongStorage", DType::I64},      {"torch.IntStorage", DType::I32},
      {"torch.ShortStorage", DType::I16},     {"torch.CharStorage", DType::I8},
      {"torch.ByteStorage", DType::U8}};
  const auto it = kTypes.find(type);
  return it == kTypes.end() ? std::nullopt : std::optional(it->second);
}

class PickleMachine {
 public:
  PickleMachine(std::span<const uint8_t> bytes, const std::string& source)
      : bytes_(bytes), source_(source) {}

  Value* run() {
    while (true) {
      const size_t at = pos_;
      const uint8_t op = take(1)[0];
      if (op == '.') {  // STOP
        ZF_CHECK(stack_.size() == 1 && marks_.empty(),
                 "[torch] {}: the pickle stops with {} values on its stack", source_,
                 stack_.size());
        return stack_.back();
      }
      step(op, at);
    }
  }

 private:
  [[noreturn]] void bad(size_t at, const std::string& what) const {
    fail("[torch] {}: byte {} of data.pkl: {}", source_, at, what);
  }

  std::span<const uint8_t> take(size_t n) {
    if (n > bytes_.size() - pos_) bad(pos_, fmt::format("{} bytes needed, the pickle ends", n));
    const auto out = bytes_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  uint64_t little(size_t n) {
    const auto b = take(n);
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | b[i];
    return v;
  }
  std::string text(size_t n) {
    const auto b = take(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }
  std::string line() {
    const auto* begin = bytes_.data() + pos_;
    const auto* end = static_cast<const uint8_t*>(std::memchr(begin, '\n', bytes_.size() - pos_));
    if (!end) bad(pos_, "a GLOBAL's name has no end of line");
    std::string s(reinterpret_cast<const char*>(begin), static_cast<size_t>(end - begin));
    pos_ += s.size() + 1;
    return s;
  }

  Value* make(Kind kind) {
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = kind;
    return arena_.back().get();
  }
  Value* make_int(int64_t v, Kind kind = Kind::Int) {
    Value* x = make(kind);
    x->number = v;
    return x;
  }
  Value* make_text(std::string s) {
    Value* x = make(Kind::Text);
    x->text = std::move(s);
    return x;
  }

  void push(Value* v) { stack_.push_back(v); }
  Value* pop(size_t at) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) bad(at, "pops an empty stack");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top(size_t at) {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) bad(at, "reads an empty stack");
    return stack_.back();
  }
  // The values pushed since the last MARK, which is removed.
  std::vector<Value*> pop_mark(size_t at) {
    if (marks_.empty()) bad(at, "no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Value*> items(stack_.begin() + static_cast<ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return items;
  }
  Value* tuple(std::vector<Value*> items) {
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  Value* memo(uint64_t key, size_t at) {
    const auto it = memo_.find(key);
    if (it == memo_.end()) bad(at, fmt::format("reads memo entry {}, which was never stored", key));
    return it->second;
  }

  void set_items(Value* target, const std::vector<Value*>& kv, size_t at) {
    if (kv.size() % 2 != 0) bad(at, "SETITEMS with an odd number of values");
    if (target->kind != Kind::Dict) return;  // an opaque object's state: not ours to read
    for (size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
  }
  void append(Value* target, const std::vector<Value*>& items) {
    if (target->kind == Kind::List)
      target->items.insert(target->items.end(), items.begin(), items.end());
  }

  // persistent_load: ('storage', storage type, key, location, numel).
  Value* storage(Value* pid, size_t at) {
    if (pid->kind != Kind::Tuple || pid->items.size() < 5 || pid->items[0]->kind != Kind::Text ||
        pid->items[0]->text != "storage" || pid->items[1]->kind != Kind::Global ||
        pid->items[2]->kind != Kind::Text)
      bad(at, "a persistent id that is not torch.save's ('storage', type, key, location, numel)");
    Value* s = make(Kind::Storage);
    s->storage_type = pid->items[1]->text;
    s->dtype = storage_dtype(s->storage_type);
    s->text = pid->items[2]->text;
    return s;
  }

  static std::optional<std::vector<int64_t>> ints(const Value* v) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) return std::nullopt;
    std::vector<int64_t> out;
    for (const Value* x : v->items) {
      if (x->kind != Kind::Int) return std::nullopt;
      out.push_back(x->number);
    }
    return out;
  }

  // The calls torch.save emits for tensors and state dicts; any other result is opaque.
  Value* call(Value* callable, Value* args, size_t at) {
    if (callable->kind != Kind::Global || args->kind != Kind::Tuple) return make(Kind::Opaque);
    const std::string& f = callable->text;
    const auto& a = args->items;
    if (f == "collections.OrderedDict" || f == "builtins.dict") return make(Kind::Dict);
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      const auto shape = a.size() >= 4 ? ints(a[2]) : std::nullopt;
      const auto strides = a.size() >= 4 ? ints(a[3]) : std::nullopt;
      if (!shape || !strides || a[0]->kind != Kind::Storage || a[1]->kind != Kind::Int ||
          shape->size() != strides->size())
        bad(at, f + " with arguments that are not (storage, offset, size, stride, ...)");
      Value* t = make(Kind::Tensor);
      t->storage = a[0];
      t->offset = a[1]->number;
      t->shape = *shape;
      t->strides = *strides;
      return t;
    }
    if ((f == "torch._utils._rebuild_parameter" ||
         f == "torch._utils._rebuild_parameter_with_state") &&
        !a.empty() && a[0]->kind == Kind::Tensor)
      return a[0];
    return make(Kind::Opaque);
  }

  void step(uint8_t op, size_t at) {
    switch (op) {
      case 0x80:  // PROTO
        if (const uint64_t v = little(1); v < 2 || v > 5)
          bad(at, fmt::format("pickle protocol {}; torch.save writes 2 to 5", v));
        return;
      case 0x95:  // FRAME: a length hint
        take(8);
        return;
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return;
      case '}':  // EMPTY_DICT
        return push(make(Kind::Dict));
      case ']':  // EMPTY_LIST
        return push(make(Kind::List));
      case ')':  // EMPTY_TUPLE
        return push(tuple({}));
      case 't':  // TUPLE
        return push(tuple(pop_mark(at)));
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        std::vector<Value*> items(static_cast<size_t>(op - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop(at);
        return push(tuple(std::move(items)));
      }
      case 'l': {  // LIST
        Value* l = make(Kind::List);
        l->items = pop_mark(at);
        return push(l);
      }
      case 'd': {  // DICT
        Value* d = make(Kind::Dict);
        set_items(d, pop_mark(at), at);
        return push(d);
      }
      case 'a': {  // APPEND
        Value* item = pop(at);
        return append(top(at), {item});
      }
      case 'e': {  // APPENDS
        const auto items = pop_mark(at);
        return append(top(at), items);
      }
      case 's': {  // SETITEM
        Value* v = pop(at);
        Value* k = pop(at);
        return set_items(top(at), {k, v}, at);
      }
      case 'u': {  // SETITEMS
        const auto kv = pop_mark(at);
        return set_items(top(at), kv, at);
      }
      case 'q':  // BINPUT
        memo_[little(1)] = top(at);
        return;
      case 'r':  // LONG_BINPUT
        memo_[little(4)] = top(at);
        return;
      case 0x94:  // MEMOIZE
        memo_[memo_.size()] = top(at);
        return;
      case 'h':  // BINGET
        return push(memo(little(1), at));
      case 'j':  // LONG_BINGET
        return push(memo(little(4), at));
      case 'J':  // BININT
        return push(make_int(static_cast<int32_t>(little(4))));
      case 'K':  // BININT1
        return push(make_int(static_cast<int64_t>(little(1))));
      case 'M':  // BININT2
        return push(make_int(static_cast<int64_t>(little(2))));
      case 0x8a: {  // LONG1: little-endian two's complement
        const size_t n = static_cast<size_t>(little(1));
        if (n > 8) bad(at, fmt::format("an integer of {} bytes", n));
        uint64_t v = n == 0 ? 0 : little(n);
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) != 0) v |= ~uint64_t{0} << (8 * n);
        return push(make_int(static_cast<int64_t>(v)));
      }
      case 'G':  // BINFLOAT: a big-endian double (hyper-parameters; no tensor needs its value)
        take(8);
        return push(make(Kind::Float));
      case 'N':  // NONE
        return push(make(Kind::None));
      case 0x88:  // NEWTRUE
        return push(make_int(1, Kind::Bool));
      case 0x89:  // NEWFALSE
        return push(make_int(0, Kind::Bool));
      case 'X':  // BINUNICODE
      case 'T':  // BINSTRING
      case 'B':  // BINBYTES
        return push(make_text(text(static_cast<size_t>(little(4)))));
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
      case 'C':   // SHORT_BINBYTES
        return push(make_text(text(static_cast<size_t>(little(1)))));
      case 0x8d:    // BINUNICODE8
      case 0x8e: {  // BINBYTES8
        const uint64_t n = little(8);
        if (n > bytes_.size()) bad(at, fmt::format("a string of {} bytes", n));
        return push(make_text(text(static_cast<size_t>(n))));
      }
      case 'c': {  // GLOBAL module\nname\n
        Value* g = make(Kind::Global);
        g->text = line();
        g->text += "." + line();
        return push(g);
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop(at);
        Value* module = pop(at);
        if (name->kind != Kind::Text || module->kind != Kind::Text)
          bad(at, "STACK_GLOBAL of values that are not strings");
        Value* g = make(Kind::Global);
        g->text = module->text + "." + name->text;
        return push(g);
      }
      case 'R': {  // REDUCE
        Value* args = pop(at);
        Value* callable = pop(at);
        return push(call(callable, args, at));
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        Value* args = pop(at);
        pop(at);
        (void)args;
        return push(make(Kind::Opaque));
      }
      case 'b':  // BUILD: an object's state, not read
        pop(at);
        top(at);
        return;
      case 'Q':  // BINPERSID
        return push(storage(pop(at), at));
      case '0':  // POP
        pop(at);
        return;
      case '1':  // POP_MARK
        pop_mark(at);
        return;
      case '2':  // DUP
        return push(top(at));
      default:
        bad(at, fmt::format("opcode 0x{:02x}, which torch.save does not write", op));
    }
  }

  std::span<const uint8_t> bytes_;
  const std::string& source_;
  size_t pos_ = 0;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::vector<std::unique_ptr<Value>> arena_;
};

// How deep tensors are looked for: state dicts nest a few levels; a pickle of lists nested
// thousands deep is no checkpoint and must not exhaust the stack.
constexpr int kMaxDepth = 64;

// The tensors under `v`, named by the path to them; each dict or list is visited once.
void collect(const Value* v, const std::string& name, std::unordered_set<const Value*>& seen,
             std::vector<TorchTensorRecord>& out, const std::string& source, int depth = 0) {
  if (v->kind == Kind::Tensor) {
    const Value* s = v->storage;
    if (!s->dtype) {
      log::warn("[torch] {}: tensor '{}' holds {}, which zflow does not read; skipped", source,
                name, s->storage_type);
      return;
    }
    out.push_back({name, s->text, *s->dtype, v->offset, v->shape, v->strides});
    return;
  }
  if ((v->kind != Kind::Dict && v->kind != Kind::List && v->kind != Kind::Tuple) ||
      depth >= kMaxDepth || !seen.insert(v).second)
    return;
  const auto child = [&](const std::string& key) { return name.empty() ? key : name + "." + key; };
  if (v->kind == Kind::Dict) {
    for (const auto& [k, x] : v->entries) {
      if (k->kind == Kind::Text) collect(x, child(k->text), seen, out, source, depth + 1);
      if (k->kind == Kind::Int)
        collect(x, child(std::to_string(k->number)), seen, out, source, depth + 1);
    }
  } else {
    for (size_t i = 0; i < v->items.size(); ++i)
      collect(v->items[i], child(std::to_string(i)), seen, out, source, depth + 1);
  }
}

}  // namespace

std::vector<TorchTensorRecord> read_torch_pickle(std::span<const uint8_t> pickle,
                                                 const std::string& source) {
  PickleMachine machine(pickle, source);
  const Value* root = machine.run();
  if (root->kind == Kind::Dict)
    for (const auto& [k, v] : root->entries)
      if (k->kind == Kind::Text && k->text == "state_dict" && v->kind == Kind::Dict) root = v;
  std::vector<TorchTensorRecord> out;
  std::unordered_set<const Value*> seen;
  collect(root, "", seen, out, source);
  return out;
}

}  // namespace zflow::io
