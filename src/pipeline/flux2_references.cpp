#include "pipeline/flux2_references.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/image_resize.h"

namespace zflow::pipeline {

namespace {

constexpr int kMinSide = 64;
constexpr double kMaxAspect = 8.0;
constexpr double kMaxArea = 1024.0 * 1024.0;

// The sides after the step past kMaxArea pixels: scaled by sqrt(area / (w h)), truncated.
std::pair<int, int> within_max_area(int w, int h) {
  if (static_cast<double>(w) * h <= kMaxArea) return {w, h};
  const double scale = std::sqrt(kMaxArea / (static_cast<double>(w) * h));
  return {static_cast<int>(w * scale), static_cast<int>(h * scale)};
}

// Past kMaxArea pixels: Lanczos to about that area.
io::Image within_max_area(const io::Image& image) {
  const auto [w, h] = within_max_area(image.width, image.height);
  if (w == image.width && h == image.height) return image;
  return io::resize_image(image, w, h, io::ResampleFilter::Lanczos);
}

void check_reference(const io::Image& image, size_t index) {
  const int w = image.width, h = image.height;
  ZF_CHECK(w >= kMinSide && h >= kMinSide,
           "[flux2] reference image {} is {}x{}: both sides must be at least {} pixels", index + 1,
           w, h, kMinSide);
  const double aspect = std::max(static_cast<double>(w) / h, static_cast<double>(h) / w);
  ZF_CHECK(aspect <= kMaxAspect,
           "[flux2] reference image {} is {}x{}, an aspect ratio of {:.1f}: at most {} is allowed",
           index + 1, w, h, aspect, kMaxAspect);
}

}  // namespace

std::pair<int, int> flux2_prepared_size(int width, int height, int64_t multiple) {
  const auto [w, h] = within_max_area(width, height);
  return {static_cast<int>(w / multiple * multiple), static_cast<int>(h / multiple * multiple)};
}

std::pair<int, int> flux2_reference_size(const io::Image& image, int64_t multiple, size_t index) {
  check_reference(image, index);
  return flux2_prepared_size(image.width, image.height, multiple);
}

std::pair<int, int> flux2_init_size(const io::Image& image, int64_t multiple) {
  const auto [w, h] = flux2_prepared_size(image.width, image.height, multiple);
  ZF_CHECK(w > 0 && h > 0, "[flux2] init image {}x{} is smaller than one {}-pixel latent token",
           image.width, image.height, multiple);
  return {w, h};
}

io::Image flux2_init_image(const io::Image& image, int64_t multiple) {
  const auto [w, h] = flux2_init_size(image, multiple);
  const io::Image resized = within_max_area(image);
  if (w == resized.width && h == resized.height) return resized;
  return io::resize_image(resized, w, h, io::ResampleFilter::Lanczos);
}

io::Image flux2_reference_image(const io::Image& image, int64_t multiple, size_t index) {
  const auto [cw, ch] = flux2_reference_size(image, multiple, index);
  const io::Image resized = within_max_area(image);
  const int left = (resized.width - cw) / 2, top = (resized.height - ch) / 2;
  io::Image out{cw, ch, std::vector<uint8_t>(static_cast<size_t>(cw) * ch * 3)};
  for (int y = 0; y < ch; ++y)
    std::copy_n(resized.rgb.begin() + (static_cast<size_t>(top + y) * resized.width + left) * 3,
                static_cast<size_t>(cw) * 3, out.rgb.begin() + static_cast<size_t>(y) * cw * 3);
  return out;
}

}  // namespace zflow::pipeline
