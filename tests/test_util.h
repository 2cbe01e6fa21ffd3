// Shared helpers for tests: where fixtures and shared assets live, and comparisons
// with stated tolerances.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "backend/cpu/gemm.h"
#include "core/error.h"
#include "core/tensor.h"

namespace zflow::test {

// tests/fixtures of the source tree, or $ZFLOW_FIXTURES when the test binary runs from a
// bundle on another machine (scripts/gpu-check --prebuilt).
inline std::filesystem::path fixture(const std::string& name) {
  if (const char* dir = std::getenv("ZFLOW_FIXTURES")) return std::filesystem::path(dir) / name;
  return std::filesystem::path(ZFLOW_FIXTURES_DIR) / name;
}

// ../shared/assets beside the repo, or $ZFLOW_SHARED_ASSETS where only the repo travels (the
// GPU machine: scripts/gpu-bundle copies the assets the GPU tests need into the bundle).
inline std::filesystem::path shared_asset(const std::string& name) {
  if (const char* dir = std::getenv("ZFLOW_SHARED_ASSETS"))
    return std::filesystem::path(dir) / name;
  return std::filesystem::path(ZFLOW_SHARED_ASSETS_DIR) / name;
}

// Skips the calling test (with the reason) when a shared asset is absent.
#define ZF_REQUIRE_ASSET(path)                                                          \
  do {                                                                                  \
    if (!std::filesystem::exists(path))                                                 \
      GTEST_SKIP() << "shared asset " << (path) << " is absent (see ../shared/assets)"; \
  } while (0)

// The message of the zflow::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// max |got - want| / max |want|: the error relative to the output's scale, the measure
// the golden tolerances are stated in (DESIGN.md: fp32 against fp32 within 1e-4).
// Sets the CPU matmul precision for one scope (tests run with Float32 otherwise: see
// float32_matmul_environment.cpp).
class ScopedMatmulPrecision {
 public:
  explicit ScopedMatmulPrecision(cpu::MatmulPrecision p) { cpu::set_matmul_precision(p); }
  ~ScopedMatmulPrecision() { cpu::set_matmul_precision(cpu::MatmulPrecision::Float32); }
  ScopedMatmulPrecision(const ScopedMatmulPrecision&) = delete;
  ScopedMatmulPrecision& operator=(const ScopedMatmulPrecision&) = delete;
};

// A bound on the relative error bfloat16 matmuls add to a whole model's float32 result, for
// tests of MatmulPrecision::Bfloat16. Rounding each input of a product to bfloat16 moves it
// by at most 2^-9 of its size (2^-9 / sqrt(3) RMS), so one matmul's output is off by about
// sqrt(2 / 3) * 2^-9 = 1.6e-3 RMS relative. A network chains several on its residual path and
// attention's softmax magnifies errors in the logits: the tiny Z-Image transformer lands at
// 4.3e-3 to 6.0e-3, about 3x one matmul. 1e-2 leaves that margin and still fails a real
// mistake (a wrong pairing of depths or a lost term is O(1)).
inline constexpr double kBfloat16MatmulTolerance = 1e-2;

inline double relative_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  const auto g = got.to_f32_vector(), w = want.to_f32_vector();
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < std::min(g.size(), w.size()); ++i) {
    err = std::max(err, std::abs(static_cast<double>(g[i]) - w[i]));
    scale = std::max(scale, std::abs(static_cast<double>(w[i])));
  }
  return scale > 0.0 ? err / scale : err;
}

// Cosine similarity of two tensors as flat vectors: the measure for low-precision runs
// (bf16 against fp32: >= 0.999).
inline double cosine(const Tensor& a, const Tensor& b) {
  const auto x = a.to_f32_vector(), y = b.to_f32_vector();
  double xy = 0.0, xx = 0.0, yy = 0.0;
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i) {
    xy += static_cast<double>(x[i]) * y[i];
    xx += static_cast<double>(x[i]) * x[i];
    yy += static_cast<double>(y[i]) * y[i];
  }
  return xy / std::sqrt(xx * yy);
}

}  // namespace zflow::test
