// The model registry: names only, loaded on first use, least recently used evicted to fit the
// budget, never one a job still holds, and a load failure reported without being cached.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>

#include "core/error.h"
#include "fake_generator.h"
#include "server/model_registry.h"
#include "test_util.h"

namespace zflow::server {
namespace {

struct RegistryFixture : ::testing::Test {
  test::FakeGate gate;
  std::vector<std::string> loads;

  ModelRegistry make(uint64_t budget) {
    std::vector<ModelEntry> entries;
    for (const char* name : {"a", "b", "c", "broken"})
      entries.push_back({name, {.model_dir = name}, 10});
    return ModelRegistry(entries, budget, [this](const pipeline::ModelFiles& f) {
      const std::string name = f.model_dir.string();
      loads.push_back(name);
      if (name == "broken") fail("[fake] broken/transformer: truncated file");
      return std::make_unique<test::FakeGenerator>(name, gate);
    });
  }
};

TEST_F(RegistryFixture, LoadsOnFirstUseAndEvictsTheLeastRecentlyUsed) {
  ModelRegistry r = make(/*budget=*/25);  // room for two models of 10
  EXPECT_EQ(r.default_model(), "a");
  r.acquire("a");
  r.acquire("b");
  r.acquire("a");  // a is now the most recently used
  EXPECT_EQ(loads, (std::vector<std::string>{"a", "b"}));
  r.acquire("c");  // evicts b
  EXPECT_EQ(r.loaded(), (std::vector<std::string>{"c", "a"}));
  r.acquire("b");  // evicts a
  EXPECT_EQ(r.loaded(), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(loads, (std::vector<std::string>{"a", "b", "c", "b"}));
}

TEST_F(RegistryFixture, KeepsAModelAJobStillHolds) {
  ModelRegistry r = make(15);
  const auto held = r.acquire("a");
  r.acquire("b");  // a is in use: both stay, over budget, rather than pulling a from a job
  EXPECT_EQ(r.loaded(), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(held->model_name(), "a");
}

TEST_F(RegistryFixture, NamesUnknownModelsAndReportsLoadFailuresEachTime) {
  ModelRegistry r = make(0);
  try {
    r.acquire("../../etc/passwd");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'../../etc/passwd' is not one this server offers"),
              std::string::npos);
  }
  EXPECT_THROW(r.acquire("broken"), Error);
  EXPECT_THROW(r.acquire("broken"), Error);
  EXPECT_EQ(std::count(loads.begin(), loads.end(), "broken"), 2);  // retried, not cached
  EXPECT_TRUE(r.loaded().empty());
  EXPECT_THROW(r.set_default_model("nope"), Error);
  r.set_default_model("c");
  EXPECT_EQ(r.default_model(), "c");
}

// A model with LoRAs is a model of its own: loaded with the LoRAs' files (from the registry's
// folder, by name, in order), kept under its tags, and evicted like any other.
TEST(ModelRegistry, LoadsAModelWithLorasAsAModelOfItsOwn) {
  test::FakeGate gate;
  std::vector<pipeline::ModelFiles> loaded;
  ModelRegistry r({{"a", {.model_dir = "a"}, 10}}, 0,
                  [&](const pipeline::ModelFiles& f) {
                    loaded.push_back(f);
                    return std::make_unique<test::FakeGenerator>(f.model_dir.string(), gate);
                  },
                  {{"ink", "/loras/ink.safetensors"}, {"style", "/loras/style.safetensors"}});
  EXPECT_TRUE(r.has_lora("ink"));
  EXPECT_FALSE(r.has_lora("../a"));
  const std::vector<LoraChoice> two = {{"style", 0.5f}, {"ink", 1.0f}};
  r.acquire("a", two);
  r.acquire("a", two);  // cached
  r.acquire("a");       // the plain model is another
  ASSERT_EQ(loaded.size(), 2u);
  ASSERT_EQ(loaded[0].loras.size(), 2u);
  EXPECT_EQ(loaded[0].loras[0].path, "/loras/style.safetensors");
  EXPECT_EQ(loaded[0].loras[0].scale, 0.5f);
  EXPECT_EQ(loaded[0].loras[1].path, "/loras/ink.safetensors");
  EXPECT_TRUE(loaded[1].loras.empty());
  EXPECT_EQ(r.loaded(), (std::vector<std::string>{"a", "a <lora:style:0.5> <lora:ink:1>"}));
  const std::vector<LoraChoice> unknown = {{"nope", 1.0f}};
  try {
    r.acquire("a", unknown);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("LoRA 'nope' is not one this server offers"),
              std::string::npos);
  }
}

// ControlNets beside a model, one or several side by side (in order), each set a model of its own.
TEST(ModelRegistry, LoadsAModelWithControlNetsBesideIt) {
  test::FakeGate gate;
  std::vector<pipeline::ModelFiles> loaded;
  ModelRegistry r({{"a", {.model_dir = "a"}, 10}}, 0,
                  [&](const pipeline::ModelFiles& f) {
                    loaded.push_back(f);
                    return std::make_unique<test::FakeGenerator>(f.model_dir.string(), gate);
                  },
                  {}, {{"canny", "/cn/canny.safetensors"}, {"depth", "/cn/depth.safetensors"}});
  const std::vector<std::string> both = {"depth", "canny"}, one = {"canny"};
  r.acquire("a", {}, both);
  r.acquire("a", {}, one);
  r.acquire("a", {}, both);  // cached
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].controlnets,
            (std::vector<std::filesystem::path>{"/cn/depth.safetensors", "/cn/canny.safetensors"}));
  EXPECT_EQ(loaded[1].controlnets, (std::vector<std::filesystem::path>{"/cn/canny.safetensors"}));
  EXPECT_EQ(r.loaded(), (std::vector<std::string>{"a <controlnet:depth> <controlnet:canny>",
                                                  "a <controlnet:canny>"}));
  const std::vector<std::string> unknown = {"canny", "pose"};
  EXPECT_NE(zflow::test::error_of([&] {
              r.acquire("a", {}, unknown);
            }).find("ControlNet 'pose' is not one this server offers"),
            std::string::npos);
}

TEST(ModelRegistry, ScansAFolderForSafetensorsFilesAndCheckpoints) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("zflow_loras_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "sub");
  for (const char* f : {"b.safetensors", "a.safetensors", "notes.txt", "sub/c.safetensors",
                        "4x-UltraSharp.pth", "b.pth"})
    std::ofstream(dir / f) << "x";
  const std::vector<LoraEntry> found = scan_weight_folder(dir, "LoRA");
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].name, "4x-UltraSharp");  // PyTorch checkpoints too
  EXPECT_EQ(found[1].name, "a");
  EXPECT_EQ(found[2].name, "b");
  EXPECT_EQ(found[2].path, dir / "b.safetensors");  // before the checkpoint of the same name
  std::filesystem::remove_all(dir);
  EXPECT_THROW(scan_weight_folder(dir, "LoRA"), Error);
}

TEST(ModelRegistry, RefusesTwoModelsWithOneName) {
  EXPECT_THROW(ModelRegistry({{"x", {.model_dir = "a/x"}, 1}, {"x", {.model_dir = "b/x"}, 1}}, 0),
               Error);
}

TEST(ModelRegistry, ScansAModelsFolderForDiffusersFolders) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / "zflow_models_scan";
  fs::remove_all(root);
  fs::create_directories(root / "one" / "transformer");
  fs::create_directories(root / "not_a_model");
  std::ofstream(root / "one" / "model_index.json") << "{}";
  std::ofstream(root / "one" / "transformer" / "w.safetensors") << std::string(100, 'x');
  std::ofstream(root / "loose.safetensors") << "x";
  const auto found = scan_models_folder(root);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name, "one");
  EXPECT_EQ(found[0].bytes, 100u);
  EXPECT_THROW(scan_models_folder(root / "absent"), Error);
  fs::remove_all(root);
}

}  // namespace
}  // namespace zflow::server
