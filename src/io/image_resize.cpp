// Pillow-exact resizing; see image_resize.h. The formulas follow Pillow's
// src/libImaging/Resample.c and Geometry.c (python-pillow/Pillow @ 4e5f09f5), operation
// for operation, because bit-exactness depends on the order of the double arithmetic.
#include "io/image_resize.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numbers>
#include <optional>
#include <string>

#include "core/error.h"
#include "core/thread_pool.h"

// Pillow's wheels are built without FMA; a fused multiply-add (which -march=native would
// allow GCC to form) changes the last bit of a weight and so, now and then, an output byte.
#pragma GCC optimize("fp-contract=off")

namespace zflow::io {

namespace {

// ---- Filters: Pillow's kernels and supports (the half-width where they reach zero). ----

double box_kernel(double x) {
  return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0;
}

double bilinear_kernel(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double hamming_kernel(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x *= std::numbers::pi;
  // Pillow writes the window's constants as float literals (0.54f, 0.46f); their float
  // values, widened to double, are part of the result.
  return std::sin(x) / x * (double{0.54f} + double{0.46f} * std::cos(x));
}

// Keys' cubic convolution with a = -0.5.
double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= std::numbers::pi;
  return std::sin(x) / x;
}

double lanczos_kernel(double x) {
  return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

struct Kernel {
  double (*fn)(double);
  double support;
};

Kernel kernel_of(ResampleFilter filter) {
  switch (filter) {
    case ResampleFilter::Box:
      return {box_kernel, 0.5};
    case ResampleFilter::Bilinear:
      return {bilinear_kernel, 1.0};
    case ResampleFilter::Hamming:
      return {hamming_kernel, 1.0};
    case ResampleFilter::Bicubic:
      return {bicubic_kernel, 2.0};
    case ResampleFilter::Lanczos:
      return {lanczos_kernel, 3.0};
    case ResampleFilter::Nearest:
      break;
  }
  fail("[resize] filter {} has no convolution kernel", static_cast<int>(filter));
}

// ---- Weights. ----

// Fixed-point weights: 8 bits of pixel, 2 bits of headroom for kernels whose negative
// lobes let a partial sum leave [0, 255], and 22 bits of fraction in an int32.
constexpr int kPrecisionBits = 32 - 8 - 2;

// For each output pixel along one axis: the first input pixel of its window, the window
// length, and the window's weights at weights[out * stride ...].
struct Taps {
  int stride = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<int32_t> weights;
};

// The source box along this axis is [in0, in1) (the whole side unless Image.resize got a box).
Taps compute_taps(int in_size, int out_size, const Kernel& kernel, double in0, double in1) {
  // Pillow passes the source box as floats; for whole-pixel boxes (<= 2^24) the float
  // difference is exact, so scale is (in1 - in0) / out_size in double.
  const double scale = (in1 - in0) / out_size;
  // Shrinking widens the kernel by the reduction factor (it then averages, not samples).
  const double filterscale = std::max(scale, 1.0);
  const double support = kernel.support * filterscale;
  const double inv_filterscale = 1.0 / filterscale;

  Taps taps;
  taps.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(static_cast<size_t>(out_size) * taps.stride, 0);
  std::vector<double> w(taps.stride);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    // Truncation toward zero (C's int cast) is Pillow's rounding here; negatives clamp.
    const int xmin = std::max(static_cast<int>(center - support + 0.5), 0);
    const int xmax = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = xmax - xmin;
    double sum = 0.0;
    for (int x = 0; x < n; ++x) {
      w[x] = kernel.fn((x + xmin - center + 0.5) * inv_filterscale);
      sum += w[x];
    }
    int32_t* out = &taps.weights[static_cast<size_t>(xx) * taps.stride];
    for (int x = 0; x < n; ++x) {
      const double v = sum != 0.0 ? w[x] / sum : w[x];
      const double fixed = v * (1 << kPrecisionBits);
      out[x] = static_cast<int32_t>(v < 0 ? -0.5 + fixed : 0.5 + fixed);
    }
    taps.first[xx] = xmin;
    taps.count[xx] = n;
  }
  return taps;
}

// A fixed-point sum (which starts at one half, so the shift rounds) back to a byte.
inline uint8_t clip8(int32_t sum) {
  return static_cast<uint8_t>(std::clamp(sum >> kPrecisionBits, 0, 255));
}

// ---- The two passes, for C interleaved channels. ----

// in: [rows, in_width, C] -> out: [rows, taps.first.size(), C]
template <int C>
void horizontal_pass(const uint8_t* in, int in_width, int rows, const Taps& taps, uint8_t* out) {
  const int out_width = static_cast<int>(taps.first.size());
  parallel_for(
      rows,
      [&](int64_t begin, int64_t end) {
        for (int64_t y = begin; y < end; ++y) {
          const uint8_t* line = in + y * in_width * C;
          uint8_t* dst = out + y * out_width * C;
          for (int xx = 0; xx < out_width; ++xx) {
            const int32_t* k = &taps.weights[static_cast<size_t>(xx) * taps.stride];
            const uint8_t* src = line + taps.first[xx] * C;
            int32_t sum[C];
            for (int c = 0; c < C; ++c) sum[c] = 1 << (kPrecisionBits - 1);
            for (int x = 0; x < taps.count[xx]; ++x)
              for (int c = 0; c < C; ++c) sum[c] += src[x * C + c] * k[x];
            for (int c = 0; c < C; ++c) dst[xx * C + c] = clip8(sum[c]);
          }
        }
      },
      16);
}

// in: [in_rows, width, C] -> out: [taps.first.size(), width, C]. Each output row sums
// whole input rows (integer sums, so the order of the terms does not matter).
template <int C>
void vertical_pass(const uint8_t* in, int width, const Taps& taps, uint8_t* out) {
  const int out_height = static_cast<int>(taps.first.size());
  const size_t row = static_cast<size_t>(width) * C;
  parallel_for(
      out_height,
      [&](int64_t begin, int64_t end) {
        std::vector<int32_t> sum(row);
        for (int64_t yy = begin; yy < end; ++yy) {
          const int32_t* k = &taps.weights[static_cast<size_t>(yy) * taps.stride];
          std::fill(sum.begin(), sum.end(), 1 << (kPrecisionBits - 1));
          for (int y = 0; y < taps.count[yy]; ++y) {
            const uint8_t* src = in + (taps.first[yy] + y) * row;
            const int32_t weight = k[y];
            for (size_t i = 0; i < row; ++i) sum[i] += src[i] * weight;
          }
          uint8_t* dst = out + yy * row;
          for (size_t i = 0; i < row; ++i) dst[i] = clip8(sum[i]);
        }
      },
      4);
}

// Pillow's ImagingResampleInner: two passes through an 8-bit intermediate image, and a
// side whose size does not change gets no pass. Horizontal goes first, unless the height
// shrinks by more than twice as many pixels as the width does: Pillow 13 then runs the
// vertical pass first (python-pillow/Pillow#9549). The intermediate is rounded to bytes,
// so the order changes the result; tests/io/test_image_resize.cpp holds cases on both
// sides of the boundary.
template <int C>
std::vector<uint8_t> convolve_resize(const uint8_t* in, int width, int height, int new_width,
                                     int new_height, const Kernel& kernel, const Box& box) {
  const bool vertical_first = new_height < height && height - new_height > 2 * (width - new_width);
  std::vector<uint8_t> tmp;
  const uint8_t* src = in;
  int w = width, h = height;
  auto horizontal = [&] {
    std::vector<uint8_t> out(static_cast<size_t>(new_width) * h * C);
    horizontal_pass<C>(src, w, h, compute_taps(w, new_width, kernel, box[0], box[2]), out.data());
    w = new_width;
    return out;
  };
  auto vertical = [&] {
    std::vector<uint8_t> out(static_cast<size_t>(w) * new_height * C);
    vertical_pass<C>(src, w, compute_taps(h, new_height, kernel, box[1], box[3]), out.data());
    h = new_height;
    return out;
  };
  // As Pillow decides it (its box[2] is compared with the output width).
  const bool need_horizontal = new_width != width || box[0] != 0 || box[2] != new_width;
  const bool need_vertical = new_height != height || box[1] != 0 || box[3] != new_height;
  if (vertical_first) {
    tmp = vertical();
    src = tmp.data();
    return need_horizontal ? horizontal() : tmp;
  }
  if (need_horizontal) {
    tmp = horizontal();
    src = tmp.data();
  }
  return need_vertical ? vertical() : tmp;
}

// The input pixel under each output pixel's centre, as ImagingScaleAffine finds it: start
// at half a step and add the step (in / out, a double) once per pixel, truncating. -1
// marks a position past the source edge, which Pillow leaves black.
std::vector<int> nearest_indices(int in_size, int out_size) {
  const double step = static_cast<double>(in_size) / out_size;
  std::vector<int> index(out_size);
  double pos = step * 0.5;
  for (int i = 0; i < out_size; ++i) {
    const int at = pos < 0.0 ? -1 : static_cast<int>(pos);
    index[i] = at < in_size ? at : -1;
    pos += step;
  }
  return index;
}

template <int C>
std::vector<uint8_t> nearest_resize(const uint8_t* in, int width, int height, int new_width,
                                    int new_height) {
  const std::vector<int> xs = nearest_indices(width, new_width);
  const std::vector<int> ys = nearest_indices(height, new_height);
  std::vector<uint8_t> out(static_cast<size_t>(new_width) * new_height * C, 0);
  parallel_for(
      new_height,
      [&](int64_t begin, int64_t end) {
        for (int64_t y = begin; y < end; ++y) {
          if (ys[y] < 0) continue;
          const uint8_t* line = in + static_cast<size_t>(ys[y]) * width * C;
          uint8_t* dst = out.data() + y * new_width * C;
          for (int x = 0; x < new_width; ++x)
            if (xs[x] >= 0)
              for (int c = 0; c < C; ++c) dst[x * C + c] = line[xs[x] * C + c];
        }
      },
      16);
  return out;
}

void check_sizes(int width, int height, size_t bytes, int channels, int new_width, int new_height,
                 const char* kind) {
  if (width < 1 || height < 1)
    fail("[resize] the input {} image is empty ({}x{})", kind, width, height);
  if (width > kMaxImageSide || height > kMaxImageSide || int64_t{width} * height > kMaxImagePixels)
    fail("[resize] the input {} image is {}x{}, larger than the limit of {} per side and {} pixels",
         kind, width, height, kMaxImageSide, kMaxImagePixels);
  const size_t expected = static_cast<size_t>(channels) * width * height;
  if (bytes != expected)
    fail("[resize] the input {} image is {}x{} but holds {} bytes, expected {}", kind, width,
         height, bytes, expected);
  if (new_width < 1 || new_height < 1)
    fail("[resize] target size {}x{} is not positive (resizing a {}x{} {} image)", new_width,
         new_height, width, height, kind);
  if (new_width > kMaxImageSide || new_height > kMaxImageSide ||
      int64_t{new_width} * new_height > kMaxImagePixels)
    fail("[resize] target size {}x{} exceeds the limit of {} per side and {} pixels", new_width,
         new_height, kMaxImageSide, kMaxImagePixels);
}

template <int C>
std::vector<uint8_t> resize_pixels(const uint8_t* in, int width, int height, int new_width,
                                   int new_height, ResampleFilter filter,
                                   std::optional<Box> box = std::nullopt) {
  const Box whole = {0.0, 0.0, static_cast<double>(width), static_cast<double>(height)};
  // Image.resize returns a copy when the size does not change, whatever the filter.
  if (new_width == width && new_height == height && box.value_or(whole) == whole)
    return {in, in + static_cast<size_t>(width) * height * C};
  if (filter == ResampleFilter::Nearest) {
    ZF_CHECK(!box, "[resize] a source box is only implemented for the convolution filters");
    return nearest_resize<C>(in, width, height, new_width, new_height);
  }
  return convolve_resize<C>(in, width, height, new_width, new_height, kernel_of(filter),
                            box.value_or(whole));
}

constexpr std::string_view kFilterNames[] = {"nearest", "box",     "bilinear",
                                             "hamming", "bicubic", "lanczos"};

}  // namespace

std::string_view resample_filter_name(ResampleFilter filter) {
  return kFilterNames[static_cast<int>(filter)];
}

ResampleFilter resample_filter_from_name(std::string_view name) {
  std::string lower(name);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower == "linear") return ResampleFilter::Bilinear;
  for (int i = 0; i < static_cast<int>(std::size(kFilterNames)); ++i)
    if (lower == kFilterNames[i]) return static_cast<ResampleFilter>(i);
  fail(
      "[resize] unknown resample filter '{}', expected one of nearest, box, bilinear (or "
      "linear), hamming, bicubic, lanczos",
      name);
}

Image resize_image(const Image& image, int width, int height, ResampleFilter filter) {
  check_sizes(image.width, image.height, image.rgb.size(), 3, width, height, "RGB");
  Image out;
  out.width = width;
  out.height = height;
  out.rgb = resize_pixels<3>(image.rgb.data(), image.width, image.height, width, height, filter);
  return out;
}

Image resize_image_box(const Image& image, int width, int height, ResampleFilter filter,
                       const Box& box) {
  check_sizes(image.width, image.height, image.rgb.size(), 3, width, height, "RGB");
  ZF_CHECK(box[0] >= 0 && box[1] >= 0 && box[2] >= box[0] && box[3] >= box[1] &&
               box[2] <= image.width && box[3] <= image.height,
           "[resize] box ({}, {}, {}, {}) is not within the {}x{} image", box[0], box[1], box[2],
           box[3], image.width, image.height);
  Image out;
  out.width = width;
  out.height = height;
  out.rgb = resize_pixels<3>(image.rgb.data(), image.width, image.height, width, height, filter,
                             box);
  return out;
}

std::vector<uint8_t> resize_grey(std::span<const uint8_t> grey, int width, int height,
                                 int new_width, int new_height, ResampleFilter filter) {
  check_sizes(width, height, grey.size(), 1, new_width, new_height, "greyscale");
  return resize_pixels<1>(grey.data(), width, height, new_width, new_height, filter);
}

}  // namespace zflow::io
