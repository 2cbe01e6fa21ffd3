// Helpers for the op tests: seeded random tensors and the relative error measure the
// tolerances are stated in (max |got - want| / max |want|, i.e. relative to the
// output's scale, so one tolerance fits outputs of any magnitude).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/tensor.h"

namespace zflow::test {

inline Tensor random_tensor(const Shape& shape, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(shape_numel(shape)));
  for (float& x : v) x = dist(gen);
  return Tensor::from_f32(shape, v);
}

inline double relative_error(const std::vector<float>& got, const std::vector<double>& want) {
  EXPECT_EQ(got.size(), want.size());
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    err = std::max(err, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(want[i]));
  }
  return scale > 0.0 ? err / scale : err;
}

inline double relative_error(const Tensor& got, const std::vector<double>& want) {
  return relative_error(got.to_f32_vector(), want);
}

// The values a kernel sees for a stored weight: its elements widened to double
// (empty for an undefined tensor, e.g. an absent bias).
inline std::vector<double> as_double(const Tensor& t) {
  if (!t.defined()) return {};
  const std::vector<float> f = t.to_f32_vector();
  return std::vector<double>(f.begin(), f.end());
}

// A tensor claiming to live on the GPU (over host memory), to check the CUDA errors.
inline Tensor fake_cuda(const Tensor& host) {
  auto storage = Storage::borrow(host.raw(), host.nbytes(), host.storage()->owner, Device::CUDA);
  return Tensor::over(storage, 0, host.shape(), host.dtype());
}

}  // namespace zflow::test
