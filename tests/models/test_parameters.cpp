#include <cmath>

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

}  // namespace
}  // namespace zflow::models
