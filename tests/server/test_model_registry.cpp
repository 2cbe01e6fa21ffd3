// The model registry: names only, loaded on first use, least recently used evicted to fit the
// budget, never one a job still holds, and a load failure reported without being cached.
#include <gtest/gtest.h>

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
