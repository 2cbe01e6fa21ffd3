// The check every pipeline's joint runs must pass (generate_together): the requests run together
// give each request exactly, bit for bit, the images it gets alone.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zflow::test {

template <typename Pipeline, typename Request>
void expect_together_as_alone(const Pipeline& pipe, const std::vector<Request>& requests,
                              const std::string& what) {
  ASSERT_GE(requests.size(), 2u) << what;
  ASSERT_TRUE(pipe.can_share_forwards(requests[0], requests[1])) << what;
  const auto together = pipe.generate_together(requests);
  ASSERT_EQ(together.size(), requests.size()) << what;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto alone = pipe.generate(requests[r]);
    ASSERT_EQ(together[r].size(), alone.size()) << what << " request " << r;
    for (size_t k = 0; k < alone.size(); ++k)
      EXPECT_EQ(together[r][k].rgb, alone[k].rgb) << what << " request " << r << " image " << k;
  }
}

}  // namespace zflow::test
