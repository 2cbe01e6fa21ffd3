// PSNR of two 8-bit RGB images of one size, the measure the pipeline goldens are held to.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/image.h"

namespace zflow::test {

inline double psnr(const io::Image& a, const io::Image& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const double d = double(a.rgb[i]) - double(b.rgb[i]);
    sum += d * d;
  }
  const double mse = sum / double(a.rgb.size());
  return mse == 0 ? INFINITY : 10 * std::log10(255.0 * 255.0 / mse);
}

// Each of `images` against the file of the same index in `expected` (names in `dir`, as a golden
// case lists them): equal sizes and PSNR >= min_db, each printed.
inline void expect_images_match(const std::vector<io::Image>& images,
                                const nlohmann::json& expected, const std::filesystem::path& dir,
                                double min_db, const std::string& name) {
  ASSERT_EQ(images.size(), expected.size()) << name;
  for (size_t k = 0; k < images.size(); ++k) {
    const io::Image want = io::read_image(dir / expected[k].get<std::string>());
    ASSERT_EQ(images[k].width, want.width) << name;
    ASSERT_EQ(images[k].height, want.height) << name;
    const double db = psnr(images[k], want);
    std::printf("  %s[%zu]: PSNR %.1f dB\n", name.c_str(), k, db);
    EXPECT_GE(db, min_db) << name << " image " << k;
  }
}

}  // namespace zflow::test
