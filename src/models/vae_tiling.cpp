#include "models/vae_tiling.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "core/error.h"

// The blend weights multiply and add in float32 as torch evaluates them; no fused multiply-add.
#pragma GCC optimize("fp-contract=off")

namespace zflow::models {

namespace {

// b's first e rows (vertical) or columns (horizontal) become a's last e, faded in linearly:
// b[y] = a[-e + y] * (1 - y / e) + b[y] * (y / e), in place (diffusers' blend_v / blend_h).
void blend(const Tensor& a, Tensor& b, int64_t extent, bool vertical) {
  const int64_t planes = b.size(0) * b.size(1);
  const int64_t ah = a.size(2), aw = a.size(3), bh = b.size(2), bw = b.size(3);
  const int64_t e = std::min({vertical ? ah : aw, vertical ? bh : bw, extent});
  const float* ap = a.data<float>();
  float* bp = b.data<float>();
  for (int64_t k = 0; k < e; ++k) {
    const double t = static_cast<double>(k) / static_cast<double>(e);
    const float wa = static_cast<float>(1.0 - t), wb = static_cast<float>(t);
    for (int64_t p = 0; p < planes; ++p) {
      const float* pa = ap + p * ah * aw;
      float* pb = bp + p * bh * bw;
      if (vertical) {
        const float* ra = pa + (ah - e + k) * aw;
        float* rb = pb + k * bw;
        for (int64_t x = 0; x < bw; ++x) rb[x] = ra[x] * wa + rb[x] * wb;
      } else {
        for (int64_t y = 0; y < bh; ++y) {
          const float va = pa[y * aw + (aw - e + k)];
          float& vb = pb[y * bw + k];
          vb = va * wa + vb * wb;
        }
      }
    }
  }
}

// Runs `fn` on overlapping tiles of x (tile_in a side, stride three quarters of it), blends each
// result into its upper and left neighbours over a quarter of tile_out, crops every result to
// tile_out minus that quarter and joins them: diffusers' tiled_decode and _tiled_encode, where
// (tile_in, tile_out) is (latent tile, sample tile) and (sample tile, latent tile).
Tensor tiled(const Tensor& x, int64_t tile_in, int64_t tile_out,
             const std::function<Tensor(const Tensor&)>& fn) {
  const int64_t h = x.size(2), w = x.size(3);
  const int64_t stride = static_cast<int64_t>(static_cast<double>(tile_in) * (1 - 0.25));
  const int64_t extent = static_cast<int64_t>(static_cast<double>(tile_out) * 0.25);
  const int64_t limit = tile_out - extent;
  ZF_CHECK(stride >= 1, "[vae] a tile of {} is too small to overlap", tile_in);

  std::vector<std::vector<Tensor>> rows;
  for (int64_t i = 0; i < h; i += stride) {
    std::vector<Tensor>& row = rows.emplace_back();
    for (int64_t j = 0; j < w; j += stride)
      row.push_back(fn(x.slice(2, i, std::min(h, i + tile_in))
                           .slice(3, j, std::min(w, j + tile_in))
                           .contiguous())
                        .contiguous()
                        .clone());
  }
  // Blend in diffusers' order: each tile with the (already blended) tile above, then the one to
  // its left, in place.
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j) {
      if (i > 0) blend(rows[i - 1][j], rows[i][j], extent, true);
      if (j > 0) blend(rows[i][j - 1], rows[i][j], extent, false);
    }

  // Crop each tile to limit x limit and join.
  const int64_t batch = x.size(0), channels = rows[0][0].size(1);
  int64_t out_h = 0, out_w = 0;
  for (const auto& row : rows) out_h += std::min(limit, row[0].size(2));
  for (const Tensor& t : rows[0]) out_w += std::min(limit, t.size(3));
  Tensor out = Tensor::empty({batch, channels, out_h, out_w}, DType::F32);
  float* op = out.data<float>();
  int64_t y0 = 0;
  for (const auto& row : rows) {
    int64_t x0 = 0;
    const int64_t th = std::min(limit, row[0].size(2));
    for (const Tensor& t : row) {
      const int64_t tw = std::min(limit, t.size(3)), sh = t.size(2), sw = t.size(3);
      const float* tp = t.data<float>();
      for (int64_t p = 0; p < batch * channels; ++p)
        for (int64_t y = 0; y < th; ++y)
          std::copy_n(tp + (p * sh + y) * sw, tw, op + (p * out_h + y0 + y) * out_w + x0);
      x0 += tw;
    }
    y0 += th;
  }
  return out;
}

int64_t checked_factor(const AutoencoderKL& vae, int64_t tile_sample, const Tensor& x) {
  const int64_t f = int64_t{1} << (vae.config().levels() - 1);
  ZF_CHECK(tile_sample >= f && tile_sample % f == 0,
           "[vae] tile size {} must be a positive multiple of the VAE's factor {}", tile_sample, f);
  ZF_CHECK(x.ndim() == 4, "[vae] expected [B, C, h, w], got {}", shape_str(x.shape()));
  return f;
}

}  // namespace

Tensor decode_raw_tiled(const AutoencoderKL& vae, const Tensor& latent, int64_t tile_sample) {
  const int64_t tile = tile_sample / checked_factor(vae, tile_sample, latent);
  if (latent.size(2) <= tile && latent.size(3) <= tile) return vae.decode_raw(latent);
  return tiled(latent, tile, tile_sample, [&](const Tensor& t) { return vae.decode_raw(t); });
}

AutoencoderKL::Posterior encode_image(const AutoencoderKL& vae, const Tensor& image, bool tiled) {
  return tiled ? encode_tiled(vae, image, kDefaultVaeTile) : vae.encode(image);
}

Tensor decode_latents(const AutoencoderKL& vae, const Tensor& z, bool tiled) {
  return tiled ? decode_tiled(vae, z, kDefaultVaeTile) : vae.decode(z);
}

AutoencoderKL::Posterior encode_tiled(const AutoencoderKL& vae, const Tensor& image,
                                      int64_t tile_sample) {
  const int64_t tile = tile_sample / checked_factor(vae, tile_sample, image);
  if (image.size(2) <= tile_sample && image.size(3) <= tile_sample) return vae.encode(image);
  return AutoencoderKL::posterior(
      tiled(image, tile_sample, tile, [&](const Tensor& t) { return vae.encode_moments(t); }),
      vae.config().latent_channels);
}

Tensor decode_tiled(const AutoencoderKL& vae, const Tensor& z, int64_t tile_sample) {
  return decode_raw_tiled(vae, vae.denormalize_latent(z), tile_sample);
}

}  // namespace zflow::models
