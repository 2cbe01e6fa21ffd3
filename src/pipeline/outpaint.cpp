#include "pipeline/outpaint.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <string>
#include <vector>

#include "core/error.h"

namespace zflow::pipeline {
namespace {

constexpr int kToken = 16;  // pixels per latent patch for every family zflow runs

int parse_margin(std::string_view part, std::string_view text, std::string_view flag) {
  int value = -1;
  const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
  ZF_CHECK(ec == std::errc() && end == part.data() + part.size() && value >= 0 &&
               value <= kMaxOutpaintMargin,
           "[outpaint] {} '{}': each margin must be a whole number of pixels from 0 to {}", flag,
           text, kMaxOutpaintMargin);
  return value;
}

// Grows `after` (else `before`) so before + side + after is a whole number of tokens, when the
// axis grows at all.
void round_axis(int side, int& before, int& after) {
  if (before == 0 && after == 0) return;
  const int extra = (kToken - (before + side + after) % kToken) % kToken;
  (after > 0 ? after : before) += extra;
}

}  // namespace

OutpaintMargins parse_outpaint_margins(std::string_view text, std::string_view flag) {
  std::vector<int> values;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    values.push_back(parse_margin(text.substr(start, comma - start), text, flag));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  ZF_CHECK(
      values.size() == 1 || values.size() == 4,
      "[outpaint] {} '{}': expected one margin for every side or four as LEFT,TOP,RIGHT,BOTTOM",
      flag, text);
  const OutpaintMargins m = values.size() == 1
                                ? OutpaintMargins{values[0], values[0], values[0], values[0]}
                                : OutpaintMargins{values[0], values[1], values[2], values[3]};
  ZF_CHECK(m != OutpaintMargins{}, "[outpaint] {} '{}': every margin is 0, nothing to draw", flag,
           text);
  return m;
}

std::string format_outpaint_margins(const OutpaintMargins& m) {
  return fmt::format("{},{},{},{}", m.left, m.top, m.right, m.bottom);
}

OutpaintCanvas outpaint_canvas(const io::Image& picture, const OutpaintMargins& margins) {
  ZF_CHECK(picture.width > 0 && picture.height > 0 &&
               picture.rgb.size() == 3 * static_cast<size_t>(picture.width) * picture.height,
           "[outpaint] malformed picture {}x{}", picture.width, picture.height);
  OutpaintMargins m = margins;
  round_axis(picture.width, m.left, m.right);
  round_axis(picture.height, m.top, m.bottom);
  const int width = m.left + picture.width + m.right;
  const int height = m.top + picture.height + m.bottom;
  ZF_CHECK(width <= io::kMaxImageSide && height <= io::kMaxImageSide &&
               int64_t{width} * height <= io::kMaxImagePixels,
           "[outpaint] a {}x{} picture with margins {} makes a {}x{} canvas, larger than {} pixels "
           "a side",
           picture.width, picture.height, format_outpaint_margins(margins), width, height,
           io::kMaxImageSide);

  OutpaintCanvas c{{width, height, std::vector<uint8_t>(3 * size_t(width) * height)},
                   {width, height, std::vector<uint8_t>(3 * size_t(width) * height, 0)},
                   m};
  // Each canvas pixel copies the nearest picture pixel: itself inside, the edge outside.
  for (int y = 0; y < height; ++y) {
    const int sy = std::clamp(y - m.top, 0, picture.height - 1);
    for (int x = 0; x < width; ++x) {
      const int sx = std::clamp(x - m.left, 0, picture.width - 1);
      std::copy_n(&picture.rgb[3 * (size_t(sy) * picture.width + sx)], 3,
                  &c.image.rgb[3 * (size_t(y) * width + x)]);
    }
  }
  // The kept rectangle: the picture less a seam on each side that grows.
  const int seam_x = std::min(kOutpaintSeam, picture.width / 4);
  const int seam_y = std::min(kOutpaintSeam, picture.height / 4);
  const int keep_x0 = m.left + (m.left > 0 ? seam_x : 0);
  const int keep_x1 = m.left + picture.width - (m.right > 0 ? seam_x : 0);
  const int keep_y0 = m.top + (m.top > 0 ? seam_y : 0);
  const int keep_y1 = m.top + picture.height - (m.bottom > 0 ? seam_y : 0);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      const bool keep = x >= keep_x0 && x < keep_x1 && y >= keep_y0 && y < keep_y1;
      if (!keep) std::fill_n(&c.mask.rgb[3 * (size_t(y) * width + x)], 3, uint8_t{255});
    }
  return c;
}

OutpaintMargins apply_outpaint(GenerationRequest& request, const OutpaintMargins& margins) {
  ZF_CHECK(request.init_image.has_value(),
           "[outpaint] outpainting needs the picture to grow (an init image)");
  ZF_CHECK(!request.mask.has_value(),
           "[outpaint] outpainting makes its own mask: give either a mask or margins, not both");
  OutpaintCanvas canvas = outpaint_canvas(*request.init_image, margins);
  request.init_image = std::move(canvas.image);
  request.mask = std::move(canvas.mask);
  if (!request.strength) request.strength = 1.0;
  return canvas.margins;
}

}  // namespace zflow::pipeline
