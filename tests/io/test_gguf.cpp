// The GGUF reader against a file gguf-py 0.19 wrote (tools/golden/make_gguf.py): metadata of
// every type, tensor infos and values must equal what gguf.GGUFReader and
// gguf.quants.dequantize report, exactly. The writer must reproduce that file byte for byte
// from what the reader read. Malformed files must give a zflow::Error naming the file, never
// a crash.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/gguf.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow::io {
namespace {

namespace fs = std::filesystem;

const fs::path kFile = test::fixture("gguf/gguf_writer_every_kv_type.gguf");

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("zflow_gguf_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

nlohmann::json oracle() {
  std::ifstream in(test::fixture("gguf/gguf_writer_every_kv_type.json"));
  return nlohmann::json::parse(in);
}

void expect_value(const GgufValue& got, const nlohmann::json& want, const std::string& key) {
  switch (got.type()) {
    case GgufType::String:
      EXPECT_EQ(got.as_string(key), want.get<std::string>()) << key;
      break;
    case GgufType::Bool:
      EXPECT_EQ(got.as_bool(key), want.get<bool>()) << key;
      break;
    case GgufType::Float32:
    case GgufType::Float64:
      EXPECT_EQ(got.as_double(key), want.get<double>()) << key;
      break;
    case GgufType::Uint64:
      EXPECT_EQ(got.as_uint64(key), want.get<uint64_t>()) << key;
      break;
    case GgufType::Array:
      ASSERT_EQ(got.elements().size(), want.size()) << key;
      for (size_t i = 0; i < want.size(); ++i) expect_value(got.elements()[i], want[i], key);
      break;
    default:
      EXPECT_EQ(got.as_int(key), want.get<int64_t>()) << key;
  }
}

TEST(Gguf, ReadsMetadataOfEveryTypeAsGgufPy) {
  const GgufFile f = GgufFile::open(kFile);
  const nlohmann::json want = oracle();
  EXPECT_EQ(f.header().version, 3u);
  EXPECT_EQ(f.header().alignment, 64u);
  EXPECT_EQ(f.architecture(), "zflowtest");
  size_t checked = 0;
  for (const auto& kv : want["kv"]) {
    const std::string key = kv["key"];
    if (key.starts_with("GGUF.")) continue;  // gguf-py's view of the fixed header fields
    const GgufValue* v = f.find_metadata(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(gguf_type_name(v->type()), kv["type"].get<std::string>()) << key;
    if (key == "test.array_nested") {
      // gguf-py's reader flattens arrays of arrays; the writer was given [[1, 2], [3]].
      ASSERT_EQ(v->elements().size(), 2u);
      EXPECT_EQ(v->element_type(), GgufType::Array);
      EXPECT_EQ(v->elements()[0].as_ints(key), (std::vector<int64_t>{1, 2}));
      EXPECT_EQ(v->elements()[1].as_ints(key), (std::vector<int64_t>{3}));
    } else {
      if (kv.contains("element_type")) {
        EXPECT_EQ(gguf_type_name(v->element_type()), kv["element_type"].get<std::string>()) << key;
      }
      expect_value(*v, kv["value"], key);
    }
    ++checked;
  }
  EXPECT_EQ(checked, f.header().metadata.size());
}

TEST(Gguf, ReadsTensorsAsGgufPy) {
  const GgufFile f = GgufFile::open(kFile);
  const nlohmann::json want = oracle();
  const SafetensorsFile values =
      SafetensorsFile::open(test::fixture("gguf/gguf_writer_every_kv_type_values.safetensors"));
  ASSERT_EQ(f.tensors().size(), want["tensors"].size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const GgufTensorInfo& info = f.tensors()[i];
    const auto& w = want["tensors"][i];
    EXPECT_EQ(info.name, w["name"].get<std::string>());
    EXPECT_EQ(ggml_type_name(info.ggml_type), w["type"].get<std::string>()) << info.name;
    EXPECT_EQ(info.shape, w["shape"].get<Shape>()) << info.name;
    EXPECT_EQ(f.header().data_start + info.offset, w["absolute_offset"].get<uint64_t>());
    const Tensor t = f.tensor(info.name);
    EXPECT_EQ(t.shape(), info.shape);
    EXPECT_EQ(t.dtype(), info.dtype);
    // Dequantisation is exact (test_quant_blocks), so the values must match bit for bit.
    EXPECT_EQ(t.to_f32_vector(), values.tensor(info.name).to_f32_vector()) << info.name;
  }
}

TEST(Gguf, WriterReproducesGgufPysFile) {
  const GgufFile f = GgufFile::open(kFile);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& info : f.tensors()) tensors.emplace_back(info.name, f.tensor(info.name));
  TempDir dir;
  const fs::path out = dir.path / "rewritten.gguf";
  write_gguf(out, f.header().metadata, tensors, f.header().alignment);
  EXPECT_EQ(read_bytes(out), read_bytes(kFile));
}

TEST(Gguf, RoundTripsQuantisedTensors) {
  std::vector<float> v(3 * 256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::cos(0.37f * i) * (1 + i % 7);
  const Tensor x = Tensor::from_f32({3, 256}, v);
  TempDir dir;
  const fs::path out = dir.path / "q.gguf";
  const std::vector<std::pair<std::string, Tensor>> tensors = {
      {"a.q4_k", x.to(DType::Q4_K)}, {"b.q8_0", x.to(DType::Q8_0)}, {"c.f16", x.to(DType::F16)}};
  write_gguf(out, {{"general.architecture", GgufValue::of_string("test")}}, tensors);
  const GgufFile f = GgufFile::open(out);
  for (const auto& [name, t] : tensors) {
    const Tensor r = f.tensor(name);
    EXPECT_EQ(r.dtype(), t.dtype());
    EXPECT_EQ(r.shape(), t.shape());
    ASSERT_EQ(r.nbytes(), t.nbytes());
    EXPECT_EQ(std::memcmp(r.raw(), t.raw(), t.nbytes()), 0) << name;
  }
}

// The streamed writer makes each tensor only when it reaches it, in order, once: gguf-py's
// file again, byte for byte, with never more than one made tensor alive.
TEST(Gguf, StreamedWriterMakesOneTensorAtATime) {
  const GgufFile f = GgufFile::open(kFile);
  ASSERT_GT(f.tensors().size(), 2u);
  std::vector<GgufTensorSource> sources;
  std::vector<std::string> made;
  int alive = 0, most_alive = 0;
  // Each made tensor owns a copy and counts itself alive until the writer lets it go.
  struct Counted {
    Tensor copy;
    int* alive;
    ~Counted() { --*alive; }
  };
  for (const auto& info : f.tensors())
    sources.push_back({info.name, info.shape, info.dtype, [&, name = info.name] {
                         made.push_back(name);
                         const Tensor copy = f.tensor(name).clone();
                         most_alive = std::max(most_alive, ++alive);
                         std::shared_ptr<Counted> owner(new Counted{copy, &alive});  // no temporary
                         return Tensor::over(Storage::borrow(copy.raw(), copy.nbytes(), owner), 0,
                                             copy.shape(), copy.dtype());
                       }});
  TempDir dir;
  const fs::path out = dir.path / "streamed.gguf";
  write_gguf_streamed(out, f.header().metadata, sources, f.header().alignment);
  EXPECT_EQ(read_bytes(out), read_bytes(kFile));
  std::vector<std::string> order;
  for (const auto& info : f.tensors()) order.push_back(info.name);
  EXPECT_EQ(made, order);
  EXPECT_EQ(most_alive, 1);
  EXPECT_EQ(alive, 0);
}

TEST(Gguf, StreamedWriterLeavesNoFileWhenATensorFails) {
  const Tensor x = Tensor::from_f32({2, 32}, std::vector<float>(64, 1.0f));
  TempDir dir;
  const fs::path out = dir.path / "broken.gguf";
  const std::vector<GgufTensorSource> throws = {
      {"a", {2, 32}, DType::F32, [&] { return x; }},
      {"b", {2, 32}, DType::F32, []() -> Tensor { fail("[test] cannot make b"); }}};
  EXPECT_NE(test::error_of([&] { write_gguf_streamed(out, {}, throws); }).find("cannot make b"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir.path / "broken.gguf.tmp"));

  const std::vector<GgufTensorSource> wrong = {{"a", {2, 32}, DType::Q8_0, [&] { return x; }}};
  const std::string e = test::error_of([&] { write_gguf_streamed(out, {}, wrong); });
  EXPECT_NE(e.find("tensor 'a' was made as F32"), std::string::npos) << e;
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(dir.path / "broken.gguf.tmp"));
}

// --- malformed files ------------------------------------------------------------------

// Builds a GGUF file byte by byte, so each test can break one field.
struct Builder {
  std::vector<uint8_t> bytes;
  template <typename T>
  Builder& put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
    return *this;
  }
  Builder& str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
    return *this;
  }
  Builder& header(uint64_t tensors, uint64_t kv, uint32_t version = 3) {
    bytes = {'G', 'G', 'U', 'F'};
    return put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kv);
  }
  Builder& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                  uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Builder& pad(size_t alignment = 32) {
    bytes.resize((bytes.size() + alignment - 1) / alignment * alignment);
    return *this;
  }
  Builder& data(size_t n) {
    bytes.resize(bytes.size() + n, 0x11);
    return *this;
  }
};

std::string error_of(const std::vector<uint8_t>& bytes) {
  try {
    parse_gguf_header(bytes, bytes.size(), "bad.gguf");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_REJECTED(bytes, fragment)                               \
  do {                                                                 \
    const std::string message = error_of(bytes);                       \
    EXPECT_NE(message.find("bad.gguf"), std::string::npos) << message; \
    EXPECT_NE(message.find(fragment), std::string::npos) << message;   \
  } while (0)

TEST(GgufMalformed, AValidMinimalFileParses) {
  Builder b;
  b.header(1, 0).tensor("w", {32, 2}, 8, 0).pad().data(68);
  const GgufHeader h = parse_gguf_header(b.bytes, b.bytes.size(), "ok.gguf");
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_EQ(h.tensors[0].shape, (Shape{2, 32}));
  EXPECT_EQ(h.tensors[0].dtype, DType::Q8_0);
  EXPECT_EQ(h.tensors[0].nbytes, 68u);
}

// Up to the last tensor's last byte; the padding after it may go.
TEST(GgufMalformed, EveryTruncationOfARealFileIsAnError) {
  const std::vector<uint8_t> whole = read_bytes(kFile);
  const GgufHeader h = parse_gguf_header(whole, whole.size(), kFile.string());
  uint64_t end = 0;
  for (const auto& t : h.tensors) end = std::max(end, h.data_start + t.offset + t.nbytes);
  ASSERT_LT(end, whole.size());
  for (size_t n = 0; n < end; ++n) {
    const std::vector<uint8_t> cut(whole.begin(), whole.begin() + n);
    EXPECT_NE(error_of(cut), "") << "a file cut at byte " << n << " parsed";
  }
}

TEST(GgufMalformed, HeaderFields) {
  Builder b;
  EXPECT_REJECTED(std::vector<uint8_t>({'G', 'G', 'U', 'X', 3, 0, 0, 0}), "magic");
  EXPECT_REJECTED(b.header(0, 0, 1).bytes, "version 1");
  EXPECT_REJECTED(b.header(0, 0, 0x03000000).bytes, "big-endian");
  EXPECT_REJECTED(b.header(uint64_t{1} << 60, 0).bytes, "tensors claimed");
  EXPECT_REJECTED(b.header(0, uint64_t{1} << 60).bytes, "metadata entries claimed");
}

TEST(GgufMalformed, MetadataValues) {
  Builder b;
  b.header(0, 1).str("k").put<uint32_t>(13);
  EXPECT_REJECTED(b.bytes, "not a GGUF value type");
  b.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1000).data(3);
  EXPECT_REJECTED(b.bytes, "1000 bytes long");
  b.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(uint64_t{1} << 58);
  EXPECT_REJECTED(b.bytes, "more than the");
  b.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
  b.put<uint32_t>(9).put<uint64_t>(1).put<uint32_t>(4).put<uint64_t>(1).put<uint32_t>(0);
  EXPECT_REJECTED(b.bytes, "nests arrays");
  b.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
  EXPECT_REJECTED(b.bytes, "bool stored as 2");
  b.header(0, 2).str("k").put<uint32_t>(4).put<uint32_t>(1).str("k").put<uint32_t>(4).put<uint32_t>(
      1);
  EXPECT_REJECTED(b.bytes, "'k' appears twice");
  b.header(0, 1).str("general.alignment").put<uint32_t>(4).put<uint32_t>(48);
  EXPECT_REJECTED(b.bytes, "power of two");
  b.header(0, 1).str("general.alignment").put<uint32_t>(8).str("32");
  EXPECT_REJECTED(b.bytes, "general.alignment is STRING");
}

TEST(GgufMalformed, TensorInfos) {
  Builder b;
  b.header(1, 0).tensor("w", {32, 1, 1, 1, 1}, 0, 0);
  EXPECT_REJECTED(b.bytes, "'w' has 5 dims");
  b.header(1, 0).tensor("w", {32}, 16, 0).pad().data(64);
  EXPECT_REJECTED(b.bytes, "IQ2_XXS, a type zflow does not read");
  b.header(1, 0).tensor("w", {32}, 99, 0).pad().data(64);
  EXPECT_REJECTED(b.bytes, "GGML type 99");
  b.header(1, 0).tensor("w", {48}, 2, 0).pad().data(64);
  EXPECT_REJECTED(b.bytes, "not a whole number of 32-value blocks");
  b.header(1, 0).tensor("w", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0).pad();
  EXPECT_REJECTED(b.bytes, "more elements than fit in 64 bits");
  b.header(1, 0).tensor("w", {512, uint64_t{1} << 57, 0}, 0, 0).pad();  // empty, huge strides
  EXPECT_REJECTED(b.bytes, "more elements than fit in 64 bits");
  b.header(1, 0).tensor("w", {8}, 0, 16).pad().data(64);
  EXPECT_REJECTED(b.bytes, "not a multiple of the alignment 32");
  b.header(1, 0).tensor("w", {32}, 0, 0).pad().data(100);
  EXPECT_REJECTED(b.bytes, "'w' (F32 [32], 128 bytes at data offset 0) ends past the end");
  b.header(2, 0).tensor("a", {32}, 0, 0).tensor("b", {8}, 0, 96).pad().data(128);
  EXPECT_REJECTED(b.bytes, "tensor 'b' at data bytes [96, 128) overlaps tensor 'a'");
  b.header(2, 0).tensor("a", {8}, 0, 0).tensor("a", {8}, 0, 32).pad().data(64);
  EXPECT_REJECTED(b.bytes, "tensor 'a' appears twice");
}

TEST(GgufMalformed, MissingAndForeignFilesNameThePath) {
  TempDir dir;
  const fs::path p = dir.path / "not_gguf.gguf";
  std::ofstream(p) << "{\"json\": true}";
  try {
    GgufFile::open(p);
    FAIL() << "opened a JSON file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(p.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(GgufFile::open(dir.path / "absent.gguf"), Error);
}

}  // namespace
}  // namespace zflow::io
