// Shared helpers for tests: where fixtures and shared assets live, and comparisons
// with stated tolerances.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

namespace zflow::test {

inline std::filesystem::path fixture(const std::string& name) {
  return std::filesystem::path(ZFLOW_FIXTURES_DIR) / name;
}

inline std::filesystem::path shared_asset(const std::string& name) {
  return std::filesystem::path(ZFLOW_SHARED_ASSETS_DIR) / name;
}

// Skips the calling test (with the reason) when a shared asset is absent.
#define ZF_REQUIRE_ASSET(path)                                                          \
  do {                                                                                  \
    if (!std::filesystem::exists(path))                                                 \
      GTEST_SKIP() << "shared asset " << (path) << " is absent (see ../shared/assets)"; \
  } while (0)

}  // namespace zflow::test
