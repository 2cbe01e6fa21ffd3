#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "models/parameters.h"
#include "test_util.h"

namespace zflow::models {
namespace {

const std::vector<ParameterSpec> kSpecs = {
    {"blocks.0.attn.to_q.weight", {48, 300}},  // fan_in 300: bound 1/sqrt(300)
    {"blocks.0.attn.to_q.bias", {48}},
    {"blocks.0.norm1.weight", {300}},
    {"pad_token", {1, 200000}},  // more than one generation chunk
};

TEST(RandomWeights, FollowsTheInitRules) {
  const io::WeightStore store = random_weights(kSpecs, DType::F32, 7);
  const std::vector<float> w = store.get("blocks.0.attn.to_q.weight").to_f32_vector();
  const float bound = 1.0f / std::sqrt(300.0f);
  float max_abs = 0;
  for (float v : w) max_abs = std::max(max_abs, std::fabs(v));
  EXPECT_LE(max_abs, bound);
  EXPECT_GT(max_abs, 0.9f * bound);  // 14400 uniform draws come close to the bound
  for (float v : store.get("blocks.0.attn.to_q.bias").to_f32_vector()) EXPECT_EQ(v, 0.0f);
  for (float v : store.get("blocks.0.norm1.weight").to_f32_vector()) EXPECT_EQ(v, 1.0f);
}

TEST(RandomWeights, SameValuesWhateverTheThreadCountAndDtype) {
  ThreadPool::set_compute_threads(1);
  const std::vector<float> one =
      random_weights(kSpecs, DType::F32, 3).get("pad_token").to_f32_vector();
  ThreadPool::set_compute_threads(3);
  const io::WeightStore three = random_weights(kSpecs, DType::BF16, 3);
  ThreadPool::set_compute_threads(2);
  const std::vector<float> bf = three.get("pad_token").to_f32_vector();
  ASSERT_EQ(one.size(), bf.size());
  for (size_t i = 0; i < one.size(); ++i)
    ASSERT_EQ(bf[i], bf16_bits_to_f32(f32_to_bf16_bits(one[i])));
  EXPECT_EQ(three.get("pad_token").dtype(), DType::BF16);
}

// A block dtype quantises the matrices whose rows are whole blocks, as a GGUF converter would:
// the same values as the float32 weights, quantised by quantize_blocks; the rest are bf16.
TEST(RandomWeights, BlockDtypesQuantiseWholeBlockMatrices) {
  const std::vector<ParameterSpec> specs = {
      {"blocks.0.ff.weight", {16, 512}},         // rows of 16 Q8_0 blocks, 2 Q4_K blocks
      {"blocks.0.attn.to_q.weight", {48, 300}},  // 300 is not a whole number of blocks
      {"blocks.0.norm1.weight", {512}},
  };
  const io::WeightStore f32 = random_weights(specs, DType::F32, 5);
  for (DType type : {DType::Q8_0, DType::Q4_K}) {
    const io::WeightStore q = random_weights(specs, type, 5);
    const Tensor ff = q.get("blocks.0.ff.weight");
    ASSERT_EQ(ff.dtype(), type);
    const Tensor want = f32.get("blocks.0.ff.weight").to(type);
    EXPECT_EQ(std::memcmp(ff.raw(), want.raw(), want.nbytes()), 0) << dtype_name(type);
    EXPECT_EQ(q.get("blocks.0.attn.to_q.weight").dtype(), DType::BF16);
    EXPECT_EQ(q.get("blocks.0.norm1.weight").dtype(), DType::BF16);
  }
}

}  // namespace
}  // namespace zflow::models
