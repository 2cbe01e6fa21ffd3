#include "pipeline/upscale.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "io/image_resize.h"

namespace zflow::pipeline {
namespace {

// Where tiles start along one side of `size` pixels (comfy.utils.tiled_scale_multidim).
std::vector<int64_t> tile_starts(int64_t size, int tile, int overlap) {
  if (size <= tile) return {0};
  std::vector<int64_t> starts;
  for (int64_t p = 0; p < size - overlap; p += tile - overlap)
    starts.push_back(std::clamp<int64_t>(p, 0, size - overlap));
  return starts;
}

// The blend factors of a tile's output along one side of `length` pixels: 1 inside, (t + 1) /
// feather at t pixels from either edge. Both ramps apply where they meet; the factors are
// returned in the order torch multiplies them in (the nearer edge's first).
std::vector<std::vector<float>> edge_ramps(int64_t length, int64_t feather) {
  std::vector<std::vector<float>> factors(static_cast<size_t>(length));
  if (feather >= length) return factors;
  for (int64_t t = 0; t < feather; ++t) {
    const float a = static_cast<float>(static_cast<double>(t + 1) / static_cast<double>(feather));
    factors[t].push_back(a);
    factors[length - 1 - t].push_back(a);
  }
  return factors;
}

Tensor upscale_one(const models::Upscaler& model, const Tensor& image, int tile, int overlap) {
  const int64_t h = image.size(2), w = image.size(3);
  if (h <= tile && w <= tile) return model.upscale(image);
  const int64_t s = model.scale(), out_c = model.out_channels();
  const int64_t oh = h * s, ow = w * s;
  std::vector<float> sum(static_cast<size_t>(out_c * oh * ow), 0.0f), weight(sum.size(), 0.0f);
  const std::vector<int64_t> ys = tile_starts(h, tile, overlap), xs = tile_starts(w, tile, overlap);
  int done = 0;
  for (int64_t y : ys)
    for (int64_t x : xs) {
      const int64_t th = std::min<int64_t>(tile, h - y), tw = std::min<int64_t>(tile, w - x);
      const Tensor part = image.slice(2, y, y + th).slice(3, x, x + tw).contiguous();
      const std::vector<float> result = model.upscale(part).to_f32_vector();
      const int64_t rh = th * s, rw = tw * s;
      const auto rows = edge_ramps(rh, overlap * s), cols = edge_ramps(rw, overlap * s);
      for (int64_t ch = 0; ch < out_c; ++ch)
        for (int64_t r = 0; r < rh; ++r)
          for (int64_t q = 0; q < rw; ++q) {
            float m = 1.0f;
            for (float a : rows[r]) m *= a;
            for (float a : cols[q]) m *= a;
            const size_t at = static_cast<size_t>((ch * oh + y * s + r) * ow + x * s + q);
            sum[at] += result[static_cast<size_t>((ch * rh + r) * rw + q)] * m;
            weight[at] += m;
          }
      log::debug("[upscale] tile {}/{}", ++done, ys.size() * xs.size());
    }
  Tensor out = Tensor::empty({1, out_c, oh, ow}, DType::F32);
  float* o = out.data<float>();
  for (size_t i = 0; i < sum.size(); ++i) o[i] = sum[i] / weight[i];
  return out;
}

}  // namespace

Tensor upscale_tiled(const models::Upscaler& model, const Tensor& image,
                     const UpscaleTiling& tiling) {
  const int tile = tiling.tile, overlap = tiling.overlap;
  ZF_CHECK(tile > overlap && overlap >= 0, "[upscale] tile {} must be larger than its overlap {}",
           tile, overlap);
  ZF_CHECK(image.ndim() == 4, "[upscale] expected pictures [B, C, H, W], got {}",
           shape_str(image.shape()));
  std::vector<Tensor> outputs;
  for (int64_t b = 0; b < image.size(0); ++b)
    outputs.push_back(upscale_one(model, image.slice(0, b, b + 1), tile, overlap));
  return outputs.size() == 1 ? outputs[0] : ops::concat(outputs, 0);
}

io::Image upscale_image(const models::Upscaler& model, const io::Image& image,
                        const UpscaleTiling& tiling) {
  ZF_CHECK(model.in_channels() == 3 && model.out_channels() == 3,
           "[upscale] the model maps {} channels to {}; pictures need 3 to 3", model.in_channels(),
           model.out_channels());
  const int64_t h = image.height, w = image.width, plane = h * w;
  Tensor in = Tensor::empty({1, 3, h, w}, DType::F32);
  float* x = in.data<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < plane; ++i) x[c * plane + i] = image.rgb[3 * i + c] / 255.0f;
  Stopwatch clock;
  const std::vector<float> y = upscale_tiled(model, in, tiling).to_f32_vector();
  io::Image out;
  out.width = static_cast<int>(w * model.scale());
  out.height = static_cast<int>(h * model.scale());
  const int64_t out_plane = int64_t{out.width} * out.height;
  out.rgb.resize(static_cast<size_t>(3 * out_plane));
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t i = 0; i < out_plane; ++i)
      out.rgb[3 * i + c] = static_cast<uint8_t>(
          std::nearbyint(std::clamp(y[c * out_plane + i], 0.0f, 1.0f) * 255.0f));
  log::info("[upscale] {}x{} -> {}x{} in {:.2f} s", w, h, out.width, out.height, clock.lap());
  return out;
}

io::Image upscale_image_to(const models::Upscaler& model, const io::Image& image, int width,
                           int height, const UpscaleTiling& tiling) {
  io::Image out = image;
  for (int pass = 0; pass < 3 && (out.width < width || out.height < height); ++pass) {
    if (model.scale() == 1) break;  // a 1x model (restoration) cannot grow it
    out = upscale_image(model, out, tiling);
  }
  if (out.width == width && out.height == height) return out;
  return io::resize_image(out, width, height, io::ResampleFilter::Lanczos);
}

}  // namespace zflow::pipeline
