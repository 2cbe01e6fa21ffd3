// WeightStore: single files, sharded models written the way transformers does, diffusers
// component folders, and the index errors (missing shard, path escaping the folder,
// a tensor in two shards).
#include "io/weight_store.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace zflow::io {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path =
        fs::temp_directory_path() / fmt::format("zflow_weight_store_{}_{}", ::getpid(), counter++);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

Tensor f32(Shape shape, std::vector<float> values) {
  return Tensor::from_f32(std::move(shape), values);
}

std::string hex(const Tensor& t) {
  std::string out;
  for (size_t i = 0; i < t.nbytes(); ++i)
    out += fmt::format("{:02x}", static_cast<const uint8_t*>(t.raw())[i]);
  return out;
}

const fs::path kSharded = test::fixture("safetensors/sharded_transformers");

void expect_matches_sharded_oracle(const WeightStore& store) {
  std::ifstream in(test::fixture("safetensors/sharded_transformers_values.json"));
  const auto oracle = nlohmann::json::parse(in)["tensors"];
  ASSERT_EQ(store.size(), oracle.size());
  for (const auto& [name, want] : oracle.items()) {
    SCOPED_TRACE(name);
    const Tensor t = store.get(name, want["shape"].get<Shape>());
    EXPECT_EQ(dtype_name(t.dtype()), want["dtype"].get<std::string>());
    EXPECT_EQ(hex(t), want["bytes_hex"].get<std::string>());
    EXPECT_EQ(fs::path(store.source_of(name)).filename(), want["shard"].get<std::string>());
  }
}

// read_ahead brings a store's mapped weights into the page cache: a file whose pages were dropped
// (where the filesystem lets them be) is resident again soon after, without being touched.
TEST(WeightStore, ReadAheadBringsTheMappedWeightsIn) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("zflow_read_ahead_" + std::to_string(getpid()) + ".safetensors");
  std::vector<float> values(1 << 20, 0.5f);  // 4 MiB
  write_safetensors(path, {{"w", Tensor::from_f32({1 << 10, 1 << 10}, values)}});
  const int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  const WeightStore store = WeightStore::open(path);
  const Tensor w = store.get("w");
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  auto* start = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(w.raw()) / page * page);
  const size_t pages =
      (static_cast<size_t>(static_cast<uint8_t*>(w.raw()) - start) + w.nbytes() + page - 1) / page;
  auto resident = [&] {
    std::vector<unsigned char> in(pages);
    EXPECT_EQ(::mincore(start, pages * page, in.data()), 0);
    return static_cast<size_t>(
        std::count_if(in.begin(), in.end(), [](unsigned char c) { return c & 1; }));
  };
  std::printf("  resident before: %zu of %zu pages\n", resident(), pages);
  read_ahead(store);
  for (int i = 0; i < 500 && resident() < pages; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(resident(), pages);
  ::close(fd);
  std::filesystem::remove(path);
}

TEST(WeightStore, OpensAShardedModelByIndex) {
  const auto index = kSharded / "model.safetensors.index.json";
  const auto store = WeightStore::open(index);
  expect_matches_sharded_oracle(store);
  EXPECT_EQ(store.description(), index.string());
}

TEST(WeightStore, OpensAShardedModelByFolder) {
  expect_matches_sharded_oracle(WeightStore::open(kSharded));
}

TEST(WeightStore, OpensASingleFileAndADiffusersComponentFolder) {
  const auto file = WeightStore::open(
      test::fixture("safetensors/safetensors_every_dtype_single_values.safetensors"));
  EXPECT_EQ(file.size(), 17u);
  EXPECT_TRUE(file.contains("bf16"));
  const auto vae = WeightStore::open(test::fixture("safetensors/diffusers_component/vae"));
  EXPECT_EQ(vae.names(),
            (std::vector<std::string>{"decoder.conv_in.bias", "decoder.conv_in.weight"}));
  EXPECT_THAT(vae.source_of("decoder.conv_in.bias"),
              HasSubstr("diffusion_pytorch_model.safetensors"));
}

TEST(WeightStore, ShapeMismatchNamesFileTensorAndBothShapes) {
  const auto vae = WeightStore::open(test::fixture("safetensors/diffusers_component/vae"));
  EXPECT_THAT(
      [&] {
        vae.get("decoder.conv_in.weight", {2, 3, 3, 3});
      },
      ThrowsMessage<Error>(AllOf(HasSubstr("[load] "),
                                 HasSubstr("diffusion_pytorch_model.safetensors: "),
                                 HasSubstr("'decoder.conv_in.weight' has shape [2, 3, 1, 1], "
                                           "expected [2, 3, 3, 3]"))));
}

TEST(WeightStore, MissingTensorSuggestsAPrefix) {
  WeightStore store;
  store.add("vae.decoder.conv.weight", f32({1}, {1}));
  EXPECT_THAT([&] { store.get("decoder.conv.weight"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("'decoder.conv.weight'"),
                                         HasSubstr("similar: vae.decoder.conv.weight"))));
}

TEST(WeightStore, AddRenameAndPrefix) {
  WeightStore store;
  store.add("vae.a", f32({1}, {1}));
  store.add("vae.b", f32({2}, {2, 3}));
  store.add("text.c", f32({1}, {4}));
  EXPECT_THAT([&] { store.add("vae.a", f32({1}, {9}), "second"); },
              ThrowsMessage<Error>(AllOf(HasSubstr("'vae.a'"), HasSubstr("<memory>"))));

  const auto vae = store.with_prefix_removed("vae.");
  EXPECT_EQ(vae.names(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(vae.get("b").to_f32_vector(), (std::vector<float>{2, 3}));

  const auto upper = store.renamed([](const std::string& n) -> std::optional<std::string> {
    if (n == "text.c") return std::nullopt;
    return "x." + n;
  });
  EXPECT_EQ(upper.names(), (std::vector<std::string>{"x.vae.a", "x.vae.b"}));
  EXPECT_THAT(
      [&] { store.renamed([](const std::string&) { return std::optional<std::string>("same"); }); },
      ThrowsMessage<Error>(HasSubstr("to 'same'")));
}

// ---- Bad folders and indexes, written by hand.

// A small valid shard holding `names` (one float each).
void write_shard(const fs::path& path, const std::vector<std::string>& names) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const auto& n : names) tensors.emplace_back(n, f32({1}, {1}));
  write_safetensors(path, tensors);
}

std::string index_json(const std::map<std::string, std::string>& weight_map) {
  return nlohmann::json{{"metadata", {{"total_size", 8}}}, {"weight_map", weight_map}}.dump();
}

std::string open_error(const fs::path& path) {
  try {
    WeightStore::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "opened " << path;
  return "";
}

TEST(WeightStoreIndex, ShardFileMissing) {
  TempDir dir;
  write_shard(dir.path / "a.safetensors", {"w1"});
  write_text(dir.path / "m.safetensors.index.json",
             index_json({{"w1", "a.safetensors"}, {"w2", "b.safetensors"}}));
  EXPECT_THAT(open_error(dir.path / "m.safetensors.index.json"),
              AllOf(HasSubstr("m.safetensors.index.json"), HasSubstr("'w2'"),
                    HasSubstr("b.safetensors"), HasSubstr("does not exist")));
}

TEST(WeightStoreIndex, ShardOutsideTheFolder) {
  TempDir dir;
  fs::create_directories(dir.path / "model");
  write_shard(dir.path / "outside.safetensors", {"w"});
  for (const std::string& shard :
       {std::string("../outside.safetensors"), (dir.path / "outside.safetensors").string(),
        std::string("sub/../../outside.safetensors")}) {
    write_text(dir.path / "model" / "m.safetensors.index.json", index_json({{"w", shard}}));
    EXPECT_THAT(open_error(dir.path / "model"),
                AllOf(HasSubstr("m.safetensors.index.json"), HasSubstr("'w'"),
                      HasSubstr("not a path inside")));
  }
}

TEST(WeightStoreIndex, TensorInTwoShards) {
  TempDir dir;
  write_shard(dir.path / "a.safetensors", {"w1", "shared"});
  write_shard(dir.path / "b.safetensors", {"w2", "shared"});
  write_text(
      dir.path / "m.safetensors.index.json",
      index_json({{"w1", "a.safetensors"}, {"w2", "b.safetensors"}, {"shared", "a.safetensors"}}));
  EXPECT_THAT(open_error(dir.path), AllOf(HasSubstr("'shared'"), HasSubstr("two shards"),
                                          HasSubstr("a.safetensors"), HasSubstr("b.safetensors")));
}

TEST(WeightStoreIndex, IndexPointsAtTheWrongShard) {
  TempDir dir;
  write_shard(dir.path / "a.safetensors", {"w1"});
  write_shard(dir.path / "b.safetensors", {"w2"});
  write_text(dir.path / "m.safetensors.index.json",
             index_json({{"w1", "b.safetensors"}, {"w2", "b.safetensors"}}));
  EXPECT_THAT(open_error(dir.path),
              AllOf(HasSubstr("'w1'"), HasSubstr("b.safetensors"), HasSubstr("does not hold it")));
}

TEST(WeightStoreIndex, MalformedIndexFiles) {
  TempDir dir;
  write_shard(dir.path / "a.safetensors", {"w"});
  const auto index = dir.path / "m.safetensors.index.json";
  write_text(index, "{\"weight_map\": ");
  EXPECT_THAT(open_error(index), AllOf(HasSubstr(index.string()), HasSubstr("not valid JSON")));
  write_text(index, R"({"metadata": {}})");
  EXPECT_THAT(open_error(index), HasSubstr("'weight_map'"));
  write_text(index, R"({"weight_map": {"w": 3}})");
  EXPECT_THAT(open_error(index), AllOf(HasSubstr("'w'"), HasSubstr("number")));
  write_text(index, R"({"weight_map": {"w": "a.safetensors", "w": "b.safetensors"}})");
  EXPECT_THAT(open_error(index), AllOf(HasSubstr("'w' appears twice")));
}

TEST(WeightStoreFolder, AmbiguousOrEmptyFolders) {
  TempDir dir;
  EXPECT_THAT(open_error(dir.path), HasSubstr("no .safetensors file"));
  EXPECT_THAT(open_error(dir.path / "absent"), HasSubstr("no such file"));

  // A diffusers folder with two variants of the same weights: ambiguous, say so.
  write_shard(dir.path / "diffusion_pytorch_model.safetensors", {"w"});
  write_shard(dir.path / "diffusion_pytorch_model.fp16.safetensors", {"w"});
  EXPECT_THAT(open_error(dir.path),
              AllOf(HasSubstr("'w'"), HasSubstr("diffusion_pytorch_model.safetensors"),
                    HasSubstr("diffusion_pytorch_model.fp16.safetensors")));

  write_text(dir.path / "a.safetensors.index.json", index_json({}));
  write_text(dir.path / "b.safetensors.index.json", index_json({}));
  EXPECT_THAT(open_error(dir.path),
              AllOf(HasSubstr("several index files"), HasSubstr("a.safetensors.index.json")));
}

TEST(WeightStore, ModuleWeightsStripsWhateverPrecedesTheAnchor) {
  WeightStore store;
  const Tensor t = Tensor::zeros({2}, DType::F32);
  store.add("text_encoders.qwen.model.embed_tokens.weight", t);
  store.add("text_encoders.qwen.model.layers.0.w", t);
  store.add("lm_head.weight", t);
  const WeightStore module = store.module_weights("embed_tokens.weight", "Qwen3 checkpoint");
  EXPECT_EQ(module.names(), (std::vector<std::string>{"embed_tokens.weight", "layers.0.w"}));

  EXPECT_THAT([&] { WeightStore{}.module_weights("embed_tokens.weight", "Qwen3 checkpoint"); },
              ThrowsMessage<Error>(HasSubstr("not a Qwen3 checkpoint")));
  store.add("other.embed_tokens.weight", t);
  EXPECT_THAT([&] { store.module_weights("embed_tokens.weight", "Qwen3 checkpoint"); },
              ThrowsMessage<Error>(HasSubstr("more than one Qwen3 checkpoint")));
  WeightStore glued;
  glued.add("xembed_tokens.weight", t);
  EXPECT_THAT([&] { glued.module_weights("embed_tokens.weight", "Qwen3 checkpoint"); },
              ThrowsMessage<Error>(HasSubstr("not under a module prefix")));
}

TEST(WeightStore, ComponentConfigJsonOnlyForFoldersAndIndexes) {
  const auto folder = test::fixture("qwen3/tiny_diffusers/text_encoder");
  ASSERT_TRUE(component_config_json(folder).has_value());
  EXPECT_EQ(*component_config_json(folder), folder / "config.json");
  EXPECT_EQ(component_config_json(folder / "model.safetensors.index.json"), folder / "config.json");
  EXPECT_FALSE(component_config_json(test::fixture("qwen3/qwen3_tiny_comfy_weights.safetensors")));
}

}  // namespace
}  // namespace zflow::io
