// The zflow binary end to end: exit codes and the one-line errors users see.
#include <gmock/gmock.h>

#include <array>
#include <cstdio>
#include <string>

#include "test_util.h"

namespace zflow {
namespace {

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr together
};

CommandResult run_zflow(const std::string& args) {
  const std::string command = std::string(ZFLOW_BINARY) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  EXPECT_NE(pipe, nullptr);
  CommandResult r{-1, {}};
  if (!pipe) return r;
  std::array<char, 4096> buf;
  while (size_t n = fread(buf.data(), 1, buf.size(), pipe)) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(Cli, InfoDescribesAFixture) {
  const CommandResult r = run_zflow(
      "info " + test::fixture("safetensors/sharded_transformers").string() + " --tensors");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("5 tensors"));
  EXPECT_THAT(r.output, testing::HasSubstr("model.layers.0.norm.weight BF16 [4]"));
}

TEST(Cli, MissingFileIsOneClearLine) {
  const CommandResult r = run_zflow("info /nonexistent/model.safetensors");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.output, "error: [info] /nonexistent/model.safetensors: no such file or folder\n");
}

TEST(Cli, BenchVaeRunsWithRandomWeights) {
  const CommandResult r = run_zflow("bench vae --random-weights -W 32 -H 16 --encode --threads 1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_THAT(r.output, testing::HasSubstr("decode 32x16 batch 1, 1 threads"));
  EXPECT_THAT(r.output, testing::HasSubstr("encode 32x16"));
}

TEST(Cli, BenchRejectsBadSizes) {
  const CommandResult r = run_zflow("bench vae --random-weights -W 100");
  EXPECT_EQ(r.status, 1);
  EXPECT_THAT(r.output, testing::HasSubstr("-W and -H must be positive multiples of 16"));
}

TEST(Cli, BenchNeedsExactlyOneWeightSource) {
  const CommandResult none = run_zflow("bench dit -W 256 -H 256");
  EXPECT_EQ(none.status, 1);
  EXPECT_THAT(none.output,
              testing::HasSubstr("exactly one of --random-weights and --diffusion-model"));
  const CommandResult layers =
      run_zflow("bench text-encoder --text-encoder x.safetensors --layers 2");
  EXPECT_EQ(layers.status, 1);
  EXPECT_THAT(layers.output, testing::HasSubstr("--layers only applies to --random-weights"));
}

}  // namespace
}  // namespace zflow
