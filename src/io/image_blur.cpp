#include "io/image_blur.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace zflow::io {

namespace {

constexpr int kPasses = 3;  // ImageFilter.GaussianBlur's

// _gaussian_blur_radius: the extended box's radius for `passes` passes approximating a Gaussian
// of standard deviation `radius`, in Pillow's float / double mix.
float box_radius(float radius, int passes) {
  const float sigma2 = radius * radius / static_cast<float>(passes);
  const auto length = static_cast<float>(std::sqrt(12.0 * sigma2 + 1.0));
  const auto whole = static_cast<float>(std::floor((length - 1.0) / 2.0));
  float fraction = (2 * whole + 1) * (whole * (whole + 1) - 3 * sigma2);
  fraction /= 6 * (sigma2 - (whole + 1) * (whole + 1));
  return whole + fraction;
}

// One pass of ImagingLineBoxBlur8 over n samples `in` (stride apart) into `out`: a box of
// 2 radius + 1 samples weighted ww each, the next sample on both sides weighted fw (the
// fractional part), the border sample standing in for everything past the ends.
struct BoxWeights {
  int radius;
  uint32_t ww, fw;
};

void blur_line(const uint8_t* in, uint8_t* out, int n, const BoxWeights& w) {
  const int r = w.radius, last = n - 1;
  const int edge_a = std::min(r + 1, n), edge_b = std::max(n - r - 1, 0);
  auto at = [&](int x) -> uint32_t { return in[x]; };
  uint32_t acc = at(0) * static_cast<uint32_t>(r + 1);
  for (int x = 0; x < edge_a - 1; ++x) acc += at(x);
  acc += at(last) * static_cast<uint32_t>(r - edge_a + 1);
  // Slide: drop sample `sub`, take sample `add`, weight the two beyond the box by fw.
  auto step = [&](int x, int sub, int add, int far_left, int far_right) {
    acc += at(add) - at(sub);
    const uint32_t bulk = acc * w.ww + (at(far_left) + at(far_right)) * w.fw;
    out[x] = static_cast<uint8_t>((bulk + (1u << 23)) >> 24);
  };
  if (edge_a <= edge_b) {
    for (int x = 0; x < edge_a; ++x) step(x, 0, x + r, 0, x + r + 1);
    for (int x = edge_a; x < edge_b; ++x) step(x, x - r - 1, x + r, x - r - 1, x + r + 1);
    for (int x = edge_b; x <= last; ++x) step(x, x - r - 1, last, x - r - 1, last);
  } else {
    for (int x = 0; x < edge_b; ++x) step(x, 0, x + r, 0, x + r + 1);
    for (int x = edge_b; x < edge_a; ++x) step(x, 0, last, 0, last);
    for (int x = edge_a; x <= last; ++x) step(x, x - r - 1, last, x - r - 1, last);
  }
}

// ImagingHorizontalBoxBlur's weights for a float radius.
BoxWeights weights(float radius) {
  BoxWeights w{static_cast<int>(radius), 0, 0};
  w.ww = static_cast<uint32_t>(static_cast<float>(1u << 24) / (radius * 2 + 1));
  w.fw = ((1u << 24) - static_cast<uint32_t>(w.radius * 2 + 1) * w.ww) / 2;
  return w;
}

// `passes` box blurs along each of `lines` lines of `n` samples: line i's sample j is at
// data[i * line_step + j * sample_step].
void blur_lines(std::vector<uint8_t>& data, int lines, int n, size_t line_step, size_t sample_step,
                const BoxWeights& w) {
  std::vector<uint8_t> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int i = 0; i < lines; ++i) {
    uint8_t* base = data.data() + static_cast<size_t>(i) * line_step;
    for (int j = 0; j < n; ++j)
      in[static_cast<size_t>(j)] = base[static_cast<size_t>(j) * sample_step];
    for (int pass = 0; pass < kPasses; ++pass) {
      blur_line(in.data(), out.data(), n, w);
      std::swap(in, out);
    }
    for (int j = 0; j < n; ++j)
      base[static_cast<size_t>(j) * sample_step] = in[static_cast<size_t>(j)];
  }
}

}  // namespace

void gaussian_blur_interleaved(std::span<uint8_t> pixels, int width, int height, int channels,
                               float radius) {
  ZF_CHECK(std::isfinite(radius) && radius >= 0.0f,
           "[image] blur radius must be a finite number >= 0, got {}", radius);
  ZF_CHECK(width > 0 && height > 0 && channels > 0 &&
               pixels.size() == static_cast<size_t>(width) * height * channels,
           "[image] cannot blur a malformed {}x{} image of {} channels", width, height, channels);
  if (radius == 0.0f) return;
  const BoxWeights w = weights(box_radius(radius, kPasses));
  // Each channel of each row, then of each column (Pillow blurs the transposed image's rows).
  const size_t n = static_cast<size_t>(width) * height, stride = static_cast<size_t>(channels);
  std::vector<uint8_t> plane(n);
  for (size_t c = 0; c < stride; ++c) {
    for (size_t i = 0; i < n; ++i) plane[i] = pixels[stride * i + c];
    blur_lines(plane, height, width, static_cast<size_t>(width), 1, w);
    blur_lines(plane, width, height, 1, static_cast<size_t>(width), w);
    for (size_t i = 0; i < n; ++i) pixels[stride * i + c] = plane[i];
  }
}

Image gaussian_blur(const Image& image, float radius) {
  Image out = image;
  gaussian_blur_interleaved(out.rgb, image.width, image.height, 3, radius);
  return out;
}

}  // namespace zflow::io
