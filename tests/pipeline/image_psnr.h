// PSNR of two 8-bit RGB images of one size, the measure the pipeline goldens are held to.
#pragma once

#include <cmath>

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

}  // namespace zflow::test
