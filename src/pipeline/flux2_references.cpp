#include "pipeline/flux2_references.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "io/image_paste.h"
#include "io/image_resize.h"

namespace zflow::pipeline {

namespace {

constexpr int kMinSide = 64;
constexpr double kMaxAspect = 8.0;

// The sides after the step past 1024 x 1024 pixels: scaled by sqrt(target / (w h)), truncated.
std::pair<int, int> within_area(int w, int h, double target_area) {
  if (static_cast<double>(w) * h <= kFlux2ReferenceArea) return {w, h};
  const double scale = std::sqrt(target_area / (static_cast<double>(w) * h));
  return {static_cast<int>(w * scale), static_cast<int>(h * scale)};
}

void check_reference(const io::Image& image, size_t index, std::string_view family) {
  const int w = image.width, h = image.height;
  ZF_CHECK(w >= kMinSide && h >= kMinSide,
           "[{}] reference image {} is {}x{}: both sides must be at least {} pixels", family,
           index + 1, w, h, kMinSide);
  const double aspect = std::max(static_cast<double>(w) / h, static_cast<double>(h) / w);
  ZF_CHECK(aspect <= kMaxAspect,
           "[{}] reference image {} is {}x{}, an aspect ratio of {:.1f}: at most {} is allowed",
           family, index + 1, w, h, aspect, kMaxAspect);
}

std::pair<int, int> rounded_down(std::pair<int, int> size, int64_t multiple) {
  return {static_cast<int>(size.first / multiple * multiple),
          static_cast<int>(size.second / multiple * multiple)};
}

}  // namespace

io::Image flux2_area_resized(const io::Image& image, double target_area) {
  const auto [w, h] = within_area(image.width, image.height, target_area);
  if (w == image.width && h == image.height) return image;
  return io::resize_image(image, w, h, io::ResampleFilter::Lanczos);
}

std::pair<int, int> flux2_prepared_size(int width, int height, int64_t multiple) {
  return rounded_down(within_area(width, height, kFlux2ReferenceArea), multiple);
}

std::pair<int, int> flux2_reference_size(const io::Image& image, int64_t multiple, size_t index,
                                         double target_area, std::string_view family) {
  check_reference(image, index, family);
  return rounded_down(within_area(image.width, image.height, target_area), multiple);
}

std::pair<int, int> flux2_init_size(const io::Image& image, int64_t multiple) {
  const auto [w, h] = flux2_prepared_size(image.width, image.height, multiple);
  ZF_CHECK(w > 0 && h > 0, "[flux2] init image {}x{} is smaller than one {}-pixel latent token",
           image.width, image.height, multiple);
  return {w, h};
}

io::Image flux2_init_image(const io::Image& image, int64_t multiple) {
  const auto [w, h] = flux2_init_size(image, multiple);
  const io::Image resized = flux2_area_resized(image);
  if (w == resized.width && h == resized.height) return resized;
  return io::resize_image(resized, w, h, io::ResampleFilter::Lanczos);
}

io::Image flux2_reference_image(const io::Image& image, int64_t multiple, size_t index,
                                double target_area, std::string_view family) {
  const auto [cw, ch] = flux2_reference_size(image, multiple, index, target_area, family);
  const io::Image resized = flux2_area_resized(image, target_area);
  return io::crop_image(resized, (resized.width - cw) / 2, (resized.height - ch) / 2, cw, ch);
}

}  // namespace zflow::pipeline
