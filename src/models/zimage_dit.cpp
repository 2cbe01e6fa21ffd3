#include "models/zimage_dit.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <sstream>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/key_map_zimage.h"
#include "io/load_quantization.h"
#include "models/config_json.h"
#include "models/timestep_embedding.h"
#include "models/zimage_controlnet.h"
#include "models/zimage_tokens.h"

namespace zflow::models {
namespace {

using Model = ZImageTransformer;

constexpr int64_t kTimestepFeatures = 256;  // TimestepEmbedder.frequency_embedding_size
constexpr int64_t kTimestepHidden = 1024;   // TimestepEmbedder mid_size
constexpr float kQkNormEps = 1e-5f;         // fixed in diffusers' Attention(eps=1e-5)
constexpr float kFinalNormEps = 1e-6f;      // FinalLayer LayerNorm, no affine

using Binder = ParameterBinder;

struct Bound {
  Model::Linear x_embedder, final_linear, final_adaln, t_mlp0, t_mlp2, cap_linear;
  Tensor cap_norm, x_pad_token, cap_pad_token;
  std::vector<Model::Block> noise_refiner, context_refiner, layers;
  Tensor siglip_norm, siglip_pad_token;  // Omni's SigLIP path
  Model::Linear siglip_linear;
  std::vector<Model::Block> siglip_refiner;
};

// The whole tree in diffusers' state-dict order.
Bound bind_all(Binder& bind, const ZImageDiTConfig& c) {
  Bound b;
  const int64_t d = c.dim;
  b.x_embedder = bind_zimage_linear(bind, "all_x_embedder.2-1", c.patch_features(), d, true);
  b.final_linear =
      bind_zimage_linear(bind, "all_final_layer.2-1.linear", d, c.patch_features(), true);
  b.final_adaln =
      bind_zimage_linear(bind, "all_final_layer.2-1.adaLN_modulation.1", c.adaln_dim(), d, true);
  for (int i = 0; i < c.n_refiner_layers; ++i)
    b.noise_refiner.push_back(bind_zimage_block(bind, fmt::format("noise_refiner.{}", i), c, true));
  for (int i = 0; i < c.n_refiner_layers; ++i)
    b.context_refiner.push_back(
        bind_zimage_block(bind, fmt::format("context_refiner.{}", i), c, false));
  b.t_mlp0 = bind_zimage_linear(bind, "t_embedder.mlp.0", kTimestepFeatures, kTimestepHidden, true);
  b.t_mlp2 = bind_zimage_linear(bind, "t_embedder.mlp.2", kTimestepHidden, c.adaln_dim(), true);
  b.cap_norm = bind("cap_embedder.0.weight", {c.cap_feat_dim});
  b.cap_linear = bind_zimage_linear(bind, "cap_embedder.1", c.cap_feat_dim, d, true);
  if (c.siglip_feat_dim > 0) {
    b.siglip_norm = bind("siglip_embedder.0.weight", {c.siglip_feat_dim});
    b.siglip_linear = bind_zimage_linear(bind, "siglip_embedder.1", c.siglip_feat_dim, d, true);
    for (int i = 0; i < c.n_refiner_layers; ++i)
      b.siglip_refiner.push_back(
          bind_zimage_block(bind, fmt::format("siglip_refiner.{}", i), c, false));
    b.siglip_pad_token = bind("siglip_pad_token", {1, d});
  }
  b.x_pad_token = bind("x_pad_token", {1, d});
  b.cap_pad_token = bind("cap_pad_token", {1, d});
  for (int i = 0; i < c.n_layers; ++i)
    b.layers.push_back(bind_zimage_block(bind, fmt::format("layers.{}", i), c, true));
  return b;
}

// The blocks in the order a forward runs them, as --offload streams them (Omni's SigLIP refiner
// stays resident: text-to-image runs in Omni mode skip it).
std::vector<std::string> block_prefixes(const ZImageDiTConfig& c) {
  std::vector<std::string> prefixes;
  for (int i = 0; i < c.n_refiner_layers; ++i)
    prefixes.push_back(fmt::format("noise_refiner.{}.", i));
  for (int i = 0; i < c.n_refiner_layers; ++i)
    prefixes.push_back(fmt::format("context_refiner.{}.", i));
  for (int i = 0; i < c.n_layers; ++i) prefixes.push_back(fmt::format("layers.{}.", i));
  return prefixes;
}

void validate(const ZImageDiTConfig& c, const std::string& source) {
  ZF_CHECK(c.dim > 0 && c.n_heads > 0 && c.dim % c.n_heads == 0,
           "[zimage] {}: dim {} does not split into n_heads {}", source, c.dim, c.n_heads);
  ZF_CHECK(c.axes_dims.size() == 3 && c.axes_lens.size() == 3,
           "[zimage] {}: axes_dims and axes_lens must have 3 entries", source);
  const int64_t axes = std::accumulate(c.axes_dims.begin(), c.axes_dims.end(), int64_t{0});
  ZF_CHECK(axes == c.head_dim(), "[zimage] {}: axes_dims {} sum to {}, expected the head dim {}",
           source, c.axes_dims, axes, c.head_dim());
  ZF_CHECK(c.in_channels > 0 && c.patch_size > 0 && c.cap_feat_dim > 0,
           "[zimage] {}: in_channels, patch_size and cap_feat_dim must be positive", source);
  ZF_CHECK(c.n_layers >= 0 && c.n_refiner_layers >= 0, "[zimage] {}: negative layer count", source);
  ZF_CHECK(c.rope_theta > 0.0, "[zimage] {}: rope_theta {} is not positive", source, c.rope_theta);
  ZF_CHECK(c.siglip_feat_dim >= 0, "[zimage] {}: siglip_feat_dim {} is negative", source,
           c.siglip_feat_dim);
}

const ZImageDiTConfig& validated(const ZImageDiTConfig& c, const std::string& source) {
  validate(c, source);
  return c;
}

}  // namespace

Model::Linear bind_zimage_linear(Binder& bind, const std::string& prefix, int64_t in, int64_t out,
                                 bool bias) {
  Model::Linear l{bind(prefix + ".weight", {out, in}), {}};
  if (bias) l.bias = bind(prefix + ".bias", {out});
  return l;
}

Model::Block bind_zimage_block(Binder& bind, const std::string& p, const ZImageDiTConfig& c,
                               bool modulated) {
  const int64_t d = c.dim, hd = c.head_dim(), ffn = c.ffn_dim();
  Model::Block b;
  b.to_q = bind_zimage_linear(bind, p + ".attention.to_q", d, d, false);
  b.to_k = bind_zimage_linear(bind, p + ".attention.to_k", d, d, false);
  b.to_v = bind_zimage_linear(bind, p + ".attention.to_v", d, d, false);
  b.to_out = bind_zimage_linear(bind, p + ".attention.to_out.0", d, d, false);
  if (c.qk_norm) {
    b.norm_q = bind(p + ".attention.norm_q.weight", {hd});
    b.norm_k = bind(p + ".attention.norm_k.weight", {hd});
  }
  b.w1 = bind(p + ".feed_forward.w1.weight", {ffn, d});
  b.w2 = bind(p + ".feed_forward.w2.weight", {d, ffn});
  b.w3 = bind(p + ".feed_forward.w3.weight", {ffn, d});
  b.attention_norm1 = bind(p + ".attention_norm1.weight", {d});
  b.ffn_norm1 = bind(p + ".ffn_norm1.weight", {d});
  b.attention_norm2 = bind(p + ".attention_norm2.weight", {d});
  b.ffn_norm2 = bind(p + ".ffn_norm2.weight", {d});
  if (modulated)
    b.adaln = bind_zimage_linear(bind, p + ".adaLN_modulation.0", c.adaln_dim(), 4 * d, true);
  return b;
}

// One stage's token rows: every sample's tokens from row 0, batch padding after them.
struct ZImageTransformer::Sequence {
  ZImageRope::Tables rope;  // float32 on the placement's device
  ops::AttentionMask mask;  // key lengths when the samples' lengths differ
};

struct ZImageTransformer::Sequences {
  Sequence image, caption, unified, siglip;  // siglip: Omni with condition images only
};

namespace {

// A stage's token positions, one list per sample, and how many tokens each sample has.
struct StagePositions {
  std::vector<std::vector<ZImagePosition>> positions;
  std::vector<int64_t> lengths;

  void add(std::vector<ZImagePosition> sample) {
    lengths.push_back(static_cast<int64_t>(sample.size()));
    positions.push_back(std::move(sample));
  }
};

}  // namespace

struct ZImageTokenLayout {
  StagePositions image, caption, unified, siglip;
};

namespace {

// What Omni's token layout is made from.
struct OmniShapes {
  std::vector<std::vector<int64_t>> segments;  // per sample, each caption segment's real length
  std::vector<std::array<int64_t, 2>> images;  // latent h, w: the conditions, then the target
  std::vector<std::array<int64_t, 2>> grids;   // SigLIP rows, cols per condition (none: empty)
  int64_t patch = 2;
};

// diffusers 0.42.1's patchify_and_embed_omni and _build_unified_sequence, per sample:
//  - caption segment j (L real tokens padded to P) takes positions (cursor + k, 0, 0) for
//    k < P; the cursor starts at 1, moves by L after the segment (its end, cap_end[j]) and by 2
//    more. diffusers lists P - L more (0, 0, 0) entries per segment for its pads and then
//    reads the list by token row, so every segment after a padded one is read off by the pad
//    count: its first rows get earlier segments' leftover entries. That is reproduced exactly
//    (a fix would change what the model sees).
//  - image j: (cap_end[j], h, w) per token, pads (0, 0, 0);
//  - SigLIP j: (cap_end[j] + 1, h', w') with h' = trunc(h / max(rows - 1, 1) * (H_j - 1)) in
//    float32 (H_j the image's latent height, not its token rows), likewise w'; pads (0, 0, 0);
//    the target has no picture: 32 pad tokens at (0, 0, 0).
// A segment, image or SigLIP run before the target's is clean; zflow orders the unified
// sequence [clean caption, images, SigLIP ; noisy images, SigLIP, caption] (diffusers: all
// captions, all images, all SigLIP) so that clean rows come first and the ragged caption last;
// attention does not depend on the order of its tokens.
ZImageTokenLayout omni_layout(const OmniShapes& shapes) {
  const size_t n_cond = shapes.images.size() - 1;
  const int64_t p = shapes.patch;
  ZImageTokenLayout layout;
  for (const std::vector<int64_t>& segments : shapes.segments) {
    std::vector<ZImagePosition> listed, caption;
    std::vector<int64_t> cap_end;
    int64_t cursor = 1, rows = 0, clean_rows = 0;
    for (size_t j = 0; j < segments.size(); ++j) {
      const int64_t len = segments[j], padded = zimage_padded_length(len);
      for (int64_t k = 0; k < padded; ++k) listed.push_back({cursor + k, 0, 0});
      listed.resize(listed.size() + static_cast<size_t>(padded - len), ZImagePosition{0, 0, 0});
      cursor += len;
      cap_end.push_back(cursor);
      cursor += 2;
      rows += padded;
      if (j < n_cond) clean_rows = rows;
    }
    caption.assign(listed.begin(), listed.begin() + rows);

    std::vector<ZImagePosition> image, siglip;
    int64_t image_clean = 0, siglip_clean = 0;
    for (size_t j = 0; j < shapes.images.size(); ++j) {
      const auto [h, w] = shapes.images[j];
      for (int64_t y = 0; y < h / p; ++y)
        for (int64_t x = 0; x < w / p; ++x) image.push_back({cap_end[j], y, x});
      image.resize(static_cast<size_t>(zimage_padded_length(static_cast<int64_t>(image.size()))),
                   ZImagePosition{0, 0, 0});
      if (j < n_cond) image_clean = static_cast<int64_t>(image.size());
      if (shapes.grids.empty()) continue;
      if (j == n_cond) {
        siglip.resize(siglip.size() + kZImageSeqMultiple, ZImagePosition{0, 0, 0});
        continue;
      }
      const auto [rows_j, cols_j] = shapes.grids[j];
      auto spread = [](int64_t i, int64_t n, int64_t size) {
        const float step = static_cast<float>(i) / static_cast<float>(std::max<int64_t>(n - 1, 1));
        return static_cast<int64_t>(step * static_cast<float>(size - 1));
      };
      for (int64_t y = 0; y < rows_j; ++y)
        for (int64_t x = 0; x < cols_j; ++x)
          siglip.push_back({cap_end[j] + 1, spread(y, rows_j, h), spread(x, cols_j, w)});
      siglip.resize(static_cast<size_t>(zimage_padded_length(static_cast<int64_t>(siglip.size()))),
                    ZImagePosition{0, 0, 0});
      siglip_clean = static_cast<int64_t>(siglip.size());
    }

    std::vector<ZImagePosition> unified;
    auto append = [&](const std::vector<ZImagePosition>& from, int64_t begin, int64_t end) {
      unified.insert(unified.end(), from.begin() + begin, from.begin() + end);
    };
    const auto n_image = static_cast<int64_t>(image.size());
    const auto n_siglip = static_cast<int64_t>(siglip.size());
    append(caption, 0, clean_rows);
    append(image, 0, image_clean);
    append(siglip, 0, siglip_clean);
    append(image, image_clean, n_image);
    append(siglip, siglip_clean, n_siglip);
    append(caption, clean_rows, rows);
    layout.caption.add(std::move(caption));
    layout.image.add(std::move(image));
    if (!siglip.empty()) layout.siglip.add(std::move(siglip));
    layout.unified.add(std::move(unified));
  }
  return layout;
}

}  // namespace

// The tables depend only on the token layout (latent grids, padded caption lengths); a pipeline
// calls forward with the same one every step, so they are built and uploaded once.
struct ZImageTransformer::RopeCache {
  std::mutex mutex;
  std::vector<int64_t> key;  // what the layout was made from
  std::shared_ptr<const Sequences> sequences;
};

std::string ZImageDiTConfig::summary() const {
  return fmt::format(
      "dim {} layers {} refiner layers {} heads {} (head dim {}) in_channels {} patch {} "
      "cap_feat_dim {} qk_norm {} axes_dims {} axes_lens {} rope_theta {} t_scale {} eps {}{}",
      dim, n_layers, n_refiner_layers, n_heads, head_dim(), in_channels, patch_size, cap_feat_dim,
      qk_norm, axes_dims, axes_lens, rope_theta, t_scale, norm_eps,
      siglip_feat_dim > 0 ? fmt::format(" omni (siglip_feat_dim {})", siglip_feat_dim) : "");
}

ZImageDiTConfig ZImageDiTConfig::from_json(const std::string& json_text,
                                           const std::string& source) {
  const nlohmann::json j =
      parse_config_json(json_text, "zimage", source, "ZImageTransformer2DModel");
  ZImageDiTConfig c;
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[zimage] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
  };
  std::vector<int64_t> patch = {2}, f_patch = {1};
  read("all_patch_size", patch);
  read("all_f_patch_size", f_patch);
  ZF_CHECK(patch.size() == 1 && f_patch.size() == 1 && f_patch[0] == 1,
           "[zimage] {}: all_patch_size {} / all_f_patch_size {}: only one patch size with frame "
           "patch 1 is supported",
           source, patch, f_patch);
  c.patch_size = patch[0];
  read("in_channels", c.in_channels);
  read("dim", c.dim);
  read("n_layers", c.n_layers);
  read("n_refiner_layers", c.n_refiner_layers);
  read("n_heads", c.n_heads);
  read("n_kv_heads", c.n_kv_heads);
  read("norm_eps", c.norm_eps);
  read("qk_norm", c.qk_norm);
  read("cap_feat_dim", c.cap_feat_dim);
  read("rope_theta", c.rope_theta);
  read("t_scale", c.t_scale);
  read("axes_dims", c.axes_dims);
  read("axes_lens", c.axes_lens);
  read("siglip_feat_dim", c.siglip_feat_dim);
  validate(c, source);
  return c;
}

ZImageDiTConfig ZImageDiTConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "zimage"), path.string());
}

ZImageDiTConfig ZImageDiTConfig::infer_from_weights(const io::WeightStore& w) {
  ZImageDiTConfig c;
  const std::string source = w.description();
  auto dim = [&](const std::string& name, int d) {
    const Tensor t = w.get(name);
    ZF_CHECK(t.ndim() > d, "[zimage] {}: '{}' has shape {}, too few dims", source, name,
             shape_str(t.shape()));
    return t.size(d);
  };
  c.dim = dim("all_x_embedder.2-1.weight", 0);
  const int64_t features = dim("all_x_embedder.2-1.weight", 1);
  ZF_CHECK(features % (c.patch_size * c.patch_size) == 0,
           "[zimage] {}: all_x_embedder.2-1.weight has {} input features, not a multiple of "
           "patch {}^2",
           source, features, c.patch_size);
  c.in_channels = features / (c.patch_size * c.patch_size);
  c.qk_norm = w.contains("layers.0.attention.norm_q.weight");
  const int64_t head_dim = c.qk_norm ? dim("layers.0.attention.norm_q.weight", 0) : 128;
  ZF_CHECK(head_dim > 0 && c.dim % head_dim == 0, "[zimage] {}: head dim {} does not divide dim {}",
           source, head_dim, c.dim);
  c.n_heads = c.n_kv_heads = c.dim / head_dim;
  const io::ZImageBlockCounts counts = io::count_zimage_blocks(w);
  c.n_layers = counts.layers;
  c.n_refiner_layers = counts.noise_refiner;
  ZF_CHECK(counts.context_refiner == counts.noise_refiner,
           "[zimage] {}: {} noise-refiner but {} context-refiner blocks", source,
           counts.noise_refiner, counts.context_refiner);
  c.cap_feat_dim = dim("cap_embedder.0.weight", 0);
  if (w.contains("siglip_embedder.0.weight"))
    c.siglip_feat_dim = dim("siglip_embedder.0.weight", 0);
  const int64_t axes = std::accumulate(c.axes_dims.begin(), c.axes_dims.end(), int64_t{0});
  ZF_CHECK(axes == head_dim,
           "[zimage] {}: head dim {} differs from the release axes_dims {} (sum {}), which the "
           "weights do not record; give the model's config.json",
           source, head_dim, c.axes_dims, axes);
  validate(c, source);
  log::info("[zimage] {}: no config.json, inferred from weight shapes: {}", source, c.summary());
  return c;
}

std::vector<ParameterSpec> zimage_dit_parameters(const ZImageDiTConfig& config) {
  validate(config, "config");
  Binder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

io::WeightStore zimage_dit_random_weights(const ZImageDiTConfig& config, DType dtype, uint64_t seed,
                                          Device device) {
  return random_weights(zimage_dit_parameters(config), dtype, seed, device);
}

double zimage_dit_forward_flops(const ZImageDiTConfig& c, int64_t image_tokens,
                                int64_t caption_tokens) {
  auto padded = [](int64_t n) { return static_cast<double>((n + 31) / 32 * 32); };
  const double dim = static_cast<double>(c.dim), ffn = static_cast<double>(c.ffn_dim());
  // One block over L tokens: q, k, v, out (4 dim^2), the SwiGLU FFN (3 dim ffn), and
  // q k^T plus p v (2 L dim each), all times 2 for multiply-add.
  auto block = [&](double len) {
    return 2 * len * (4 * dim * dim + 3 * dim * ffn) + 4 * len * len * dim;
  };
  const double img = padded(image_tokens), cap = padded(caption_tokens);
  return c.n_refiner_layers * (block(img) + block(cap)) + c.n_layers * block(img + cap);
}

ZImageTransformer::ZImageTransformer(const ZImageDiTConfig& config, const io::WeightStore& weights,
                                     const Placement& placement)
    : config_(validated(config, weights.description())),
      placement_(placement),
      rope_(config.axes_dims, config.axes_lens, config.rope_theta),
      rope_cache_(std::make_shared<RopeCache>()) {
  std::vector<ParameterSpec> used;
  Bound b = bind_placed(weights, placement_, {}, block_prefixes(config_), "zimage", offload_, used,
                        [&](Binder& bind) { return bind_all(bind, config_); });
  x_embedder_ = b.x_embedder;
  final_linear_ = b.final_linear;
  final_adaln_ = b.final_adaln;
  t_mlp0_ = b.t_mlp0;
  t_mlp2_ = b.t_mlp2;
  cap_norm_ = b.cap_norm;
  cap_linear_ = b.cap_linear;
  x_pad_token_ = b.x_pad_token.to(placement_.activations).contiguous().view({config_.dim});
  cap_pad_token_ = b.cap_pad_token.to(placement_.activations).contiguous().view({config_.dim});
  noise_refiner_ = std::move(b.noise_refiner);
  context_refiner_ = std::move(b.context_refiner);
  layers_ = std::move(b.layers);
  if (config_.siglip_feat_dim > 0) {
    siglip_norm_ = b.siglip_norm;
    siglip_linear_ = b.siglip_linear;
    siglip_refiner_ = std::move(b.siglip_refiner);
    siglip_pad_token_ =
        b.siglip_pad_token.to(placement_.activations).contiguous().view({config_.dim});
  }
  if (used.size() != weights.size())
    log::warn("[zimage] {}: {} of its {} tensors are not part of the model ({})",
              weights.description(), weights.size() - used.size(), weights.size(),
              config_.summary());
}

// TimestepEmbedder: the sinusoid of t * t_scale (models/timestep_embedding.h), then
// Linear -> SiLU -> Linear.
Tensor ZImageTransformer::timestep_embedding(std::span<const float> t) const {
  std::vector<float> scaled(t.begin(), t.end());
  for (float& s : scaled) s *= config_.t_scale;
  const Tensor freq = placement_.activation(timestep_features(scaled, kTimestepFeatures));
  const Tensor h = ops::silu(ops::linear(freq, t_mlp0_.weight, t_mlp0_.bias));
  return ops::linear(h, t_mlp2_.weight, t_mlp2_.bias);
}

// Self-attention with QK RMSNorm per head, then the interleaved 3-axis RoPE, SDPA with
// scale 1/sqrt(head_dim), output projection. x[B, L, dim].
Tensor ZImageTransformer::attention(const Block& blk, const Tensor& x, const Sequence& seq) const {
  const int64_t b = x.size(0), l = x.size(1), h = config_.n_heads, hd = config_.head_dim();
  // One call for the three projections of x: int8 weights quantise x once for all of them.
  const std::vector<Tensor> qkv =
      ops::linears(x, {blk.to_q.weight, blk.to_k.weight, blk.to_v.weight});
  auto heads = [&](const Tensor& y) { return y.view({b, l, h, hd}); };  // [B, L, H, hd]
  auto rotated = [&](const Tensor& y, const Tensor& norm) {
    const auto layout = ops::RopeLayout::kInterleaved;
    return norm.defined()
               ? ops::rms_norm_rope(heads(y), norm, kQkNormEps, seq.rope.cos, seq.rope.sin, layout)
               : ops::rope(heads(y), seq.rope.cos, seq.rope.sin, layout);
  };
  auto heads_first = [](const Tensor& y) { return y.permute({0, 2, 1, 3}); };  // [B, H, L, hd]
  const Tensor o = ops::attention(
      heads_first(rotated(qkv[0], blk.norm_q)), heads_first(rotated(qkv[1], blk.norm_k)),
      heads_first(heads(qkv[2])), 1.0f / std::sqrt(static_cast<float>(hd)), seq.mask);
  return ops::linear(o.permute({0, 2, 1, 3}).contiguous().view({b, l, config_.dim}),
                     blk.to_out.weight);
}

// The blocks over x, in order; with --offload, block i is stream position first + i. With a
// cache, the blocks after the first run only when it says so.
Tensor ZImageTransformer::run_blocks(const std::vector<Block>& blocks, size_t first, Tensor x,
                                     const Sequence& seq, const Modulation& mod,
                                     const std::function<Tensor(size_t, Tensor)>& after,
                                     FirstBlockCache* cache) const {
  for (size_t i = 0; i < blocks.size(); ++i) {
    const Tensor input = x;
    std::optional<BlockLease> lease;
    const Block blk = block_to_run(offload_.get(), lease, first + i, blocks[i], [&](Binder& bind) {
      const std::string& prefix = offload_->prefix(first + i);
      return bind_zimage_block(bind, prefix.substr(0, prefix.size() - 1), config_,
                               blocks[i].adaln.has_value());
    });
    x = block(blk, x, seq, mod);
    if (after) x = after(i, std::move(x));
    if (cache && i == 0 && !cache->first_block_done(input, x)) return cache->last_block_done({});
  }
  return cache ? cache->last_block_done(x) : x;
}

// The ControlNet's stream c through a chain of control blocks (VideoX-Fun's
// ZImageControlTransformerBlock): block 0 starts from before_proj(c) + x, every block is a
// Z-Image block on c, and after_proj of its output is its hint. x (the main stream where the
// chain starts) is only needed until block 0 has run.
struct ZImageTransformer::ControlChain {
  const ZImageTransformer& model;
  const std::vector<ZImageControlNet::ControlBlock>& blocks;
  Tensor c, x;
  const Sequence& seq;
  const Tensor& adaln;
  size_t next = 0;

  // Runs the next block; its hint.
  Tensor advance() {
    ZF_CHECK(next < blocks.size(), "[zimage] ControlNet: no control block {} to run", next);
    const ZImageControlNet::ControlBlock& cb = blocks[next++];
    if (cb.before_proj) {
      c = ops::add(ops::linear(c, cb.before_proj->weight, cb.before_proj->bias), x);
      x = Tensor{};
    }
    c = model.block(cb.block, c, seq, adaln);
    return ops::linear(c, cb.after_proj.weight, cb.after_proj.bias);
  }
  // Runs the blocks not run yet; the stream after the last.
  Tensor finish() {
    while (next < blocks.size()) advance();
    return c;
  }
};

// The control latent as tokens: patchified like the latents, embedded, pad rows x_pad_token.
Tensor ZImageTransformer::control_tokens(const ZImageControl& control, int64_t batch, int64_t x_len,
                                         int64_t n_img) const {
  const ZImageControlNet& net = *control.net;
  const int64_t p = config_.patch_size;
  Tensor context = placement_.activation(control.context);
  if (context.size(0) != batch) context = ops::concat(std::vector<Tensor>(batch, context), 0);
  Tensor c =
      ops::linear(ops::patchify(context, p, x_len), net.x_embedder().weight, net.x_embedder().bias);
  if (x_len > n_img)
    c = ops::fill_rows(c, x_pad_token_, std::vector<int64_t>(batch, n_img),
                       std::vector<int64_t>(batch, x_len));
  return c;
}

namespace {

// A block's adaLN outputs for one adaLN input: [B, dim] each.
enum Mod { kScaleMsa, kGateMsa, kScaleMlp, kGateMlp };
using BlockMods = std::array<Tensor, 4>;

BlockMods block_mods(const ZImageTransformer::Block& blk, const Tensor& adaln, int64_t d) {
  const Tensor mod = ops::linear(adaln, blk.adaln->weight, blk.adaln->bias);  // [B, 4 dim]
  return {mod.slice(1, 0, d), ops::tanh(mod.slice(1, d, 2 * d)), mod.slice(1, 2 * d, 3 * d),
          ops::tanh(mod.slice(1, 3 * d, 4 * d))};
}

// f over the rows of x[B, L, D] (and r's alike), in two parts when split > 0: rows [0, split)
// as f(x's part, r's part, true), the rest with false; the parts' results concatenated.
Tensor by_rows(int64_t split, const Tensor& x, const Tensor& r,
               const std::function<Tensor(const Tensor&, const Tensor&, bool)>& f) {
  if (split == 0) return f(x, r, false);
  const int64_t l = x.size(1);
  auto part = [&](const Tensor& v, bool first) {
    return !v.defined() ? v : first ? v.slice(1, 0, split) : v.slice(1, split, l);
  };
  return ops::concat(
      {f(part(x, true), part(r, true), true), f(part(x, false), part(r, false), false)}, 1);
}

}  // namespace

// ZImageTransformerBlock with sandwich RMSNorms around both sub-layers. Modulated blocks
// scale the pre-norm output by (1 + scale) and add tanh(gate) * sub-layer:
//   x += tanh(g_msa) * norm2(attn(norm1(x) * (1 + s_msa)))
//   x += tanh(g_mlp) * ffn_norm2(ffn(ffn_norm1(x) * (1 + s_mlp)))
// with [s_msa, g_msa, s_mlp, g_mlp] = adaLN_modulation(adaln); unmodulated blocks drop the
// scales and gates. In Omni mode the clean rows take the modulation of their own adaLN input
// (diffusers' select_per_token).
Tensor ZImageTransformer::block(const Block& blk, const Tensor& x, const Sequence& seq,
                                const Modulation& mod) const {
  const float eps = config_.norm_eps;
  const int64_t d = config_.dim;
  std::optional<BlockMods> noisy, clean;  // none in unmodulated blocks
  if (blk.adaln) {
    noisy = block_mods(blk, mod.noisy, d);
    if (mod.clean_rows > 0) clean = block_mods(blk, mod.clean, d);
  }
  const int64_t split = clean ? mod.clean_rows : 0;
  auto mods = [&](bool first) -> const BlockMods& { return first ? *clean : *noisy; };
  auto pre_norm = [&](const Tensor& v, const Tensor& norm, Mod scale) {
    if (!blk.adaln) return ops::rms_norm(v, norm, eps);
    return by_rows(split, v, {}, [&](const Tensor& part, const Tensor&, bool first) {
      return ops::rms_norm_modulate(part, norm, eps, {}, mods(first)[scale]);
    });
  };
  auto residual = [&](const Tensor& v, Mod gate, const Tensor& r, const Tensor& norm) {
    return by_rows(split, v, r, [&](const Tensor& part, const Tensor& r_part, bool first) {
      return ops::add_gated_rms_norm(part, blk.adaln ? mods(first)[gate] : Tensor{}, r_part, norm,
                                     eps);
    });
  };
  const Tensor y =
      residual(x, kGateMsa, attention(blk, pre_norm(x, blk.attention_norm1, kScaleMsa), seq),
               blk.attention_norm2);
  const Tensor h = pre_norm(y, blk.ffn_norm1, kScaleMlp);
  const std::vector<Tensor> up = ops::linears(h, {blk.w1, blk.w3});
  return residual(y, kGateMlp, ops::linear(ops::silu_mul(up[0], up[1]), blk.w2), blk.ffn_norm2);
}

// FinalLayer: LayerNorm (no affine, eps 1e-6) * (1 + Linear(SiLU(adaln))), then Linear to
// the patch features. No shift and no gate. Omni's clean rows take their own adaLN input.
Tensor ZImageTransformer::final_layer(const Tensor& x, const Modulation& mod) const {
  auto scale = [&](const Tensor& adaln) {
    return ops::linear(ops::silu(adaln), final_adaln_.weight, final_adaln_.bias);
  };
  const Tensor h =
      by_rows(mod.clean_rows, x, {}, [&](const Tensor& part, const Tensor&, bool first) {
        return ops::layer_norm_modulate(part, kFinalNormEps, {},
                                        scale(first ? mod.clean : mod.noisy));
      });
  return ops::linear(h, final_linear_.weight, final_linear_.bias);
}

std::shared_ptr<const ZImageTransformer::Sequences> ZImageTransformer::cached(
    const std::vector<int64_t>& key, const std::function<ZImageTokenLayout()>& make) const {
  RopeCache& cache = *rope_cache_;
  std::lock_guard lock(cache.mutex);
  if (cache.sequences && cache.key == key) return cache.sequences;
  const ZImageTokenLayout layout = make();
  auto sequence = [&](const StagePositions& stage) {
    if (stage.positions.empty()) return Sequence{};
    const auto& lengths = stage.lengths;
    const int64_t longest = *std::max_element(lengths.begin(), lengths.end());
    const ZImageRope::Tables host = rope_.tables(stage.positions, longest);
    Sequence s{{host.cos.to(placement_.device), host.sin.to(placement_.device)}, {}};
    if (std::any_of(lengths.begin(), lengths.end(), [&](int64_t n) { return n != longest; }))
      s.mask.key_lengths = lengths;
    return s;
  };
  cache.key = key;
  cache.sequences =
      std::make_shared<Sequences>(Sequences{sequence(layout.image), sequence(layout.caption),
                                            sequence(layout.unified), sequence(layout.siglip)});
  return cache.sequences;
}

// Token positions (facts/zimage.md 1.3 step 3). Caption b: Lc_b = L_b padded to 32, positions
// (1 + i, 0, 0) (pads continue the run). Image: N tokens padded to 32, positions
// (Lc_b + 1, h, w), its pads (0, 0, 0). The unified sequence is [image ; caption].
std::shared_ptr<const ZImageTransformer::Sequences> ZImageTransformer::sequences(
    int64_t ht, int64_t wt, const std::vector<int64_t>& cap_len) const {
  std::vector<int64_t> key = {0, ht, wt};
  key.insert(key.end(), cap_len.begin(), cap_len.end());
  return cached(key, [&] {
    const int64_t x_len = zimage_padded_length(ht * wt);
    ZImageTokenLayout layout;
    for (const int64_t len : cap_len) {
      std::vector<ZImagePosition> cap, img;
      for (int64_t i = 0; i < len; ++i) cap.push_back({1 + i, 0, 0});
      for (int64_t y = 0; y < ht; ++y)
        for (int64_t x = 0; x < wt; ++x) img.push_back({len + 1, y, x});
      img.resize(x_len, ZImagePosition{0, 0, 0});
      std::vector<ZImagePosition> unified = img;
      unified.insert(unified.end(), cap.begin(), cap.end());
      layout.image.add(std::move(img));
      layout.caption.add(std::move(cap));
      layout.unified.add(std::move(unified));
    }
    return layout;
  });
}

Tensor ZImageTransformer::forward(const Tensor& latents_in, std::span<const float> t,
                                  const std::vector<Tensor>& captions, const ZImageControl* control,
                                  FirstBlockCache* cache) const {
  const ZImageDiTConfig& c = config_;
  ZF_CHECK(!cache || (!control && layers_.size() >= 2), "[zimage] first-block cache: {}",
           control ? "not with a ControlNet (its hints join the later layers)"
                   : "the model has one main layer");
  const int64_t p = c.patch_size;
  auto is_activation = [](DType d) { return d == DType::F32 || d == DType::BF16; };
  ZF_CHECK(latents_in.ndim() == 4 && latents_in.size(1) == c.in_channels &&
               latents_in.size(0) >= 1 && is_activation(latents_in.dtype()),
           "[zimage] forward: latents have shape {} {}, expected F32 or BF16 [B, {}, H, W]",
           shape_str(latents_in.shape()), dtype_name(latents_in.dtype()), c.in_channels);
  const int64_t batch = latents_in.size(0), height = latents_in.size(2), width = latents_in.size(3);
  ZF_CHECK(height > 0 && width > 0 && height % p == 0 && width % p == 0,
           "[zimage] forward: latent size {}x{} is not a multiple of the patch size {}", height,
           width, p);
  ZF_CHECK(static_cast<int64_t>(t.size()) == batch, "[zimage] forward: {} timesteps for {} samples",
           t.size(), batch);
  ZF_CHECK(static_cast<int64_t>(captions.size()) == batch,
           "[zimage] forward: {} captions for {} samples", captions.size(), batch);
  for (size_t i = 0; i < captions.size(); ++i)
    ZF_CHECK(captions[i].ndim() == 2 && captions[i].size(0) >= 1 &&
                 captions[i].size(1) == c.cap_feat_dim && is_activation(captions[i].dtype()),
             "[zimage] forward: caption {} has shape {} {}, expected F32 or BF16 [L >= 1, {}]", i,
             shape_str(captions[i].shape()), dtype_name(captions[i].dtype()), c.cap_feat_dim);
  if (control) {
    ZF_CHECK(control->net != nullptr, "[zimage] forward: a control input without a ControlNet");
    const Tensor& ctx = control->context;
    const int64_t in_dim = control->net->config().control_in_dim;
    ZF_CHECK(ctx.ndim() == 4 && (ctx.size(0) == 1 || ctx.size(0) == batch) &&
                 ctx.size(1) == in_dim && ctx.size(2) == height && ctx.size(3) == width &&
                 is_activation(ctx.dtype()),
             "[zimage] forward: control input has shape {} {}, expected F32 or BF16 [1 or {}, {}, "
             "{}, {}]",
             shape_str(ctx.shape()), dtype_name(ctx.dtype()), batch, in_dim, height, width);
  }
  const Placement& at = placement_;

  // 1. Timestep embedding, the input of every adaLN.
  const Tensor adaln = timestep_embedding(t);

  // 2. Token runs and their RoPE tables (sequences()).
  const int64_t ht = height / p, wt = width / p, n_img = ht * wt;
  const int64_t x_len = zimage_padded_length(n_img);
  std::vector<int64_t> cap_real(batch), cap_len(batch);
  for (int64_t b = 0; b < batch; ++b) {
    cap_real[b] = captions[b].size(0);
    cap_len[b] = zimage_padded_length(cap_real[b]);
  }
  const int64_t cap_max = *std::max_element(cap_len.begin(), cap_len.end());
  const std::vector<int64_t> all_cap(batch, cap_max);
  const bool ragged = cap_len != all_cap;
  const std::shared_ptr<const Sequences> seq = sequences(ht, wt, cap_len);

  // 3. Image tokens: patchify, embed, pad rows become x_pad_token; the noise refiner. A 2.x
  //    ControlNet's refiner chain starts from these tokens and adds a hint after refiner layers.
  Tensor x = embed_image(latents_in);
  const size_t n_refiner = noise_refiner_.size();
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  const ZImageControlNet* net = control ? control->net : nullptr;
  Tensor ctrl;  // the control stream (image rows), when there is a ControlNet
  std::optional<ControlChain> refiner_chain;
  std::function<Tensor(size_t, Tensor)> add_refiner_hint;
  if (net) {
    ctrl = control_tokens(*control, batch, x_len, n_img);
    const ZImageControlNetConfig& cc = net->config();
    if (cc.refiner != ZImageControlRefiner::Plain) {
      const auto& chain = cc.refiner == ZImageControlRefiner::ControlLayers ? net->control_layers()
                                                                            : net->refiner();
      refiner_chain.emplace(ControlChain{*this, chain, ctrl, x, seq->image, adaln});
      add_refiner_hint = [&](size_t j, Tensor h) {
        const auto& places = cc.control_refiner_layers_places;
        if (std::find(places.begin(), places.end(), static_cast<int>(j)) == places.end()) return h;
        return ops::add(h, ops::mul_scalar(refiner_chain->advance(), control->scale));
      };
    }
  }
  x = run_blocks(noise_refiner_, 0, x, seq->image, Modulation{adaln}, add_refiner_hint);
  if (refiner_chain) {
    ctrl = refiner_chain->finish();
    refiner_chain.reset();
  } else if (net) {
    for (const ZImageControlNet::ControlBlock& cb : net->refiner())
      ctrl = block(cb.block, ctrl, seq->image, adaln);
  }

  // 4. Caption tokens: RMSNorm + Linear on rows zero-padded to cap_max, pad rows become
  //    cap_pad_token, batch padding 0; the context refiner (unmodulated).
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < batch; ++b) {
    Tensor r = at.activation(captions[b]);
    if (cap_real[b] < cap_max)
      r = ops::concat(
          {r, Tensor::zeros({cap_max - cap_real[b], c.cap_feat_dim}, at.activations, at.device)},
          0);
    rows.push_back(r.unsqueeze(0));
  }
  const Tensor cap_in = batch == 1 ? rows[0] : ops::concat(rows, 0);
  Tensor cap = ops::linear(ops::rms_norm(cap_in, cap_norm_, c.norm_eps), cap_linear_.weight,
                           cap_linear_.bias);
  if (cap_real != cap_len) cap = ops::fill_rows(cap, cap_pad_token_, cap_real, cap_len);
  if (ragged) cap = ops::fill_rows(cap, Tensor{}, cap_len, all_cap);
  cap = run_blocks(context_refiner_, n_refiner, cap, seq->caption, Modulation{adaln});

  // 5. The unified sequence [image ; caption] per sample, zero batch padding after it (the
  //    refiner wrote to the caption's batch padding rows; they are cleared again): main layers.
  //    The ControlNet's stream joins the same captions; its chain starts from the unified input
  //    and hint n is added after main layer control_layers_places[n].
  if (ragged) cap = ops::fill_rows(cap, Tensor{}, cap_len, all_cap);
  Tensor u = ops::concat({x, cap}, 1);
  std::optional<ControlChain> chain;
  std::function<Tensor(size_t, Tensor)> add_hint;
  if (net) {
    chain.emplace(ControlChain{*this, net->control_layers(), ops::concat({ctrl, cap}, 1), u,
                               seq->unified, adaln});
    ctrl = Tensor{};
    add_hint = [&](size_t k, Tensor h) {
      const auto& places = net->config().control_layers_places;
      if (chain->next >= places.size() || places[chain->next] != static_cast<int>(k)) return h;
      return ops::add(h, ops::mul_scalar(chain->advance(), control->scale));
    };
  }
  u = run_blocks(layers_, 2 * n_refiner, u, seq->unified, Modulation{adaln}, add_hint, cache);

  // 6. Final layer; the first N tokens of each sample are the image.
  const Tensor out =
      ops::unpatchify(final_layer(u, Modulation{adaln}), c.in_channels, height, width, p);
  return float32_on(out, latents_in.device());
}

Tensor ZImageTransformer::embed_image(const Tensor& latents) const {
  const int64_t batch = latents.size(0), p = config_.patch_size;
  const int64_t n = (latents.size(2) / p) * (latents.size(3) / p), len = zimage_padded_length(n);
  Tensor x = ops::linear(ops::patchify(placement_.activation(latents), p, len), x_embedder_.weight,
                         x_embedder_.bias);
  if (len > n)
    x = ops::fill_rows(x, x_pad_token_, std::vector<int64_t>(batch, n),
                       std::vector<int64_t>(batch, len));
  return x;
}

Tensor ZImageTransformer::embed_run(const Tensor& feats, const Tensor& norm, const Linear& linear,
                                    const Tensor& pad_token) const {
  const int64_t n = feats.size(1), padded = zimage_padded_length(n);
  Tensor rows = feats;
  if (padded > n)
    rows = ops::concat({feats, Tensor::zeros({1, padded - n, feats.size(2)}, placement_.activations,
                                             placement_.device)},
                       1);
  const Tensor e =
      ops::linear(ops::rms_norm(rows, norm, config_.norm_eps), linear.weight, linear.bias);
  return padded > n
             ? ops::fill_rows(e, pad_token, std::vector<int64_t>{n}, std::vector<int64_t>{padded})
             : e;
}

Tensor ZImageTransformer::forward_omni(const Tensor& latents_in, std::span<const float> t,
                                       const std::vector<std::vector<Tensor>>& captions,
                                       const std::vector<ZImageOmniCondition>& conditions) const {
  const ZImageDiTConfig& c = config_;
  const int64_t p = c.patch_size, d = c.dim;
  auto is_activation = [](DType dt) { return dt == DType::F32 || dt == DType::BF16; };
  ZF_CHECK(latents_in.ndim() == 4 && latents_in.size(1) == c.in_channels &&
               latents_in.size(0) >= 1 && is_activation(latents_in.dtype()),
           "[zimage] omni forward: latents have shape {} {}, expected F32 or BF16 [B, {}, H, W]",
           shape_str(latents_in.shape()), dtype_name(latents_in.dtype()), c.in_channels);
  const int64_t batch = latents_in.size(0), height = latents_in.size(2), width = latents_in.size(3);
  ZF_CHECK(
      static_cast<int64_t>(t.size()) == batch && static_cast<int64_t>(captions.size()) == batch,
      "[zimage] omni forward: {} timesteps and {} captions for {} samples", t.size(),
      captions.size(), batch);
  const size_t n_cond = conditions.size();
  const bool with_siglip = c.siglip_feat_dim > 0 && n_cond > 0;
  OmniShapes shapes{.patch = p};
  for (const ZImageOmniCondition& cond : conditions) {
    const Tensor& l = cond.latents;
    ZF_CHECK(
        l.ndim() == 3 && l.size(0) == c.in_channels && l.size(1) % p == 0 && l.size(2) % p == 0 &&
            l.size(1) > 0 && l.size(2) > 0 && is_activation(l.dtype()),
        "[zimage] omni forward: condition latents of shape {} {}, expected F32 or BF16 [{}, h, "
        "w] with h and w multiples of {}",
        shape_str(l.shape()), dtype_name(l.dtype()), c.in_channels, p);
    shapes.images.push_back({l.size(1), l.size(2)});
    if (!with_siglip) continue;
    const Tensor& g = cond.siglip;
    ZF_CHECK(g.defined() && g.ndim() == 3 && g.size(0) >= 1 && g.size(1) >= 1 &&
                 g.size(2) == c.siglip_feat_dim && is_activation(g.dtype()),
             "[zimage] omni forward: a condition's SigLIP features have shape {}, expected [rows, "
             "cols, {}]",
             g.defined() ? shape_str(g.shape()) : "(none)", c.siglip_feat_dim);
    shapes.grids.push_back({g.size(0), g.size(1)});
  }
  ZF_CHECK(height > 0 && width > 0 && height % p == 0 && width % p == 0,
           "[zimage] omni forward: latent size {}x{} is not a multiple of the patch size {}",
           height, width, p);
  shapes.images.push_back({height, width});
  std::vector<int64_t> clean_caption(batch), cap_len(batch);
  for (int64_t b = 0; b < batch; ++b) {
    const std::vector<Tensor>& segs = captions[b];
    ZF_CHECK(segs.size() > n_cond,
             "[zimage] omni forward: sample {} has {} caption segments, expected at least {} (one "
             "per image)",
             b, segs.size(), n_cond + 1);
    std::vector<int64_t>& lengths = shapes.segments.emplace_back();
    for (size_t j = 0; j < segs.size(); ++j) {
      ZF_CHECK(segs[j].ndim() == 2 && segs[j].size(0) >= 1 && segs[j].size(1) == c.cap_feat_dim &&
                   is_activation(segs[j].dtype()),
               "[zimage] omni forward: caption {} segment {} has shape {}, expected [L >= 1, {}]",
               b, j, shape_str(segs[j].shape()), c.cap_feat_dim);
      lengths.push_back(segs[j].size(0));
      const int64_t padded = zimage_padded_length(segs[j].size(0));
      cap_len[b] += padded;
      if (j < n_cond) clean_caption[b] += padded;
    }
    ZF_CHECK(clean_caption[b] == clean_caption[0],
             "[zimage] omni forward: the condition images' caption segments pad to {} tokens in "
             "sample {} but {} in sample 0; they must agree",
             clean_caption[b], b, clean_caption[0]);
  }
  std::vector<int64_t> key = {1, p};
  for (const auto& [h, w] : shapes.images) key.insert(key.end(), {h, w});
  for (const auto& [r, k] : shapes.grids) key.insert(key.end(), {r, k});
  for (const auto& lengths : shapes.segments) {
    key.push_back(static_cast<int64_t>(lengths.size()));
    key.insert(key.end(), lengths.begin(), lengths.end());
  }
  const std::shared_ptr<const Sequences> seq = cached(key, [&] { return omni_layout(shapes); });
  const Placement& at = placement_;

  // 1. Two timestep embeddings: the step's for the target, t = 1's for the clean conditions.
  const Tensor t_noisy = timestep_embedding(t);
  const Tensor t_clean = timestep_embedding(std::vector<float>(static_cast<size_t>(batch), 1.0f));
  auto repeated = [&](const Tensor& one) {  // [1, L, D] -> [B, L, D]
    return batch == 1 ? one : ops::concat(std::vector<Tensor>(static_cast<size_t>(batch), one), 0);
  };

  // 2. Image tokens, each image's run padded to 32: the conditions (shared), then the target;
  //    the noise refiner, condition rows modulated as clean.
  std::vector<Tensor> runs;
  for (const ZImageOmniCondition& cond : conditions)
    runs.push_back(repeated(embed_image(cond.latents.unsqueeze(0))));
  const int64_t image_clean =
      std::accumulate(runs.begin(), runs.end(), int64_t{0},
                      [](int64_t n, const Tensor& r) { return n + r.size(1); });
  runs.push_back(embed_image(latents_in));
  const int64_t n_target = (height / p) * (width / p);
  Tensor x = runs.size() == 1 ? runs[0] : ops::concat(runs, 1);
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  const size_t n_refiner = noise_refiner_.size();
  x = run_blocks(noise_refiner_, 0, x, seq->image, Modulation{t_noisy, t_clean, image_clean});

  // 3. Caption tokens: each segment embedded and padded to 32 with cap_pad_token, a sample's
  //    segments one after another, zero batch padding; the context refiner.
  const int64_t cap_max = *std::max_element(cap_len.begin(), cap_len.end());
  const std::vector<int64_t> all_cap(batch, cap_max);
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> segs;
    for (const Tensor& seg : captions[b])
      segs.push_back(
          embed_run(at.activation(seg).unsqueeze(0), cap_norm_, cap_linear_, cap_pad_token_));
    if (cap_len[b] < cap_max)
      segs.push_back(Tensor::zeros({1, cap_max - cap_len[b], d}, at.activations, at.device));
    rows.push_back(segs.size() == 1 ? segs[0] : ops::concat(segs, 1));
  }
  Tensor cap = batch == 1 ? rows[0] : ops::concat(rows, 0);
  cap = run_blocks(context_refiner_, n_refiner, cap, seq->caption, Modulation{t_noisy});
  if (cap_len != all_cap) cap = ops::fill_rows(cap, Tensor{}, cap_len, all_cap);

  // 4. SigLIP tokens (conditions only): diffusers flattens a [rows, cols, C] grid with
  //    permute(2, 0, 1).reshape(rows * cols, C), which re-reads the channel-major data row by row
  //    rather than transposing it; that layout is what the model gets, so it is reproduced. Runs
  //    padded to 32 with siglip_pad_token; the target's run is 32 pad tokens; the SigLIP refiner.
  Tensor sig;
  int64_t siglip_clean = 0;
  if (with_siglip) {
    std::vector<Tensor> sig_runs;
    for (const ZImageOmniCondition& cond : conditions) {
      const int64_t n = cond.siglip.size(0) * cond.siglip.size(1);
      const Tensor channel_major = at.activation(cond.siglip)
                                       .view({n, c.siglip_feat_dim})
                                       .permute({1, 0})
                                       .contiguous()
                                       .view({1, n, c.siglip_feat_dim});
      sig_runs.push_back(embed_run(channel_major, siglip_norm_, siglip_linear_, siglip_pad_token_));
      siglip_clean += sig_runs.back().size(1);
    }
    const int64_t n_pad = kZImageSeqMultiple;
    sig_runs.push_back(ops::fill_rows(Tensor::zeros({1, n_pad, d}, at.activations, at.device),
                                      siglip_pad_token_, std::vector<int64_t>{0},
                                      std::vector<int64_t>{n_pad}));
    sig = repeated(ops::concat(sig_runs, 1));
    for (const Block& blk : siglip_refiner_)
      sig = block(blk, sig, seq->siglip, Modulation{t_noisy});
  }

  // 5. The unified sequence [clean caption, images, SigLIP ; noisy images, SigLIP, caption]
  //    (omni_layout), the main layers with the clean rows modulated as clean, the final layer;
  //    the target's tokens are the first noisy rows.
  const int64_t cap_clean = clean_caption[0];
  const int64_t n_image = x.size(1), n_siglip = with_siglip ? sig.size(1) : 0;
  std::vector<Tensor> parts = {cap.slice(1, 0, cap_clean), x.slice(1, 0, image_clean)};
  if (with_siglip) parts.push_back(sig.slice(1, 0, siglip_clean));
  parts.push_back(x.slice(1, image_clean, n_image));
  if (with_siglip) parts.push_back(sig.slice(1, siglip_clean, n_siglip));
  parts.push_back(cap.slice(1, cap_clean, cap_max));
  Tensor u = ops::concat(parts, 1);
  const int64_t clean_rows = cap_clean + image_clean + siglip_clean;
  const Modulation mod{t_noisy, t_clean, clean_rows};
  u = run_blocks(layers_, 2 * n_refiner, u, seq->unified, mod);
  const Tensor target = final_layer(u, mod).slice(1, clean_rows, clean_rows + n_target);
  const Tensor out = ops::unpatchify(target.contiguous(), c.in_channels, height, width, p);
  return float32_on(out, latents_in.device());
}

ZImageTransformer load_zimage_transformer(const io::WeightStore& weights,
                                          const std::optional<ZImageDiTConfig>& config,
                                          const Placement& placement,
                                          std::span<const LoraFile> loras) {
  const io::WeightStore stripped = io::strip_zimage_prefix(weights);
  io::WeightStore named = stripped;
  const io::ZImageLayout layout = io::detect_zimage_layout(stripped);
  // The key table is expanded for the config's block counts when there is one (a file with
  // more blocks is then an error naming the first extra tensor), else for the file's.
  const io::ZImageBlockCounts counts =
      config ? io::ZImageBlockCounts{config->n_layers, config->n_refiner_layers,
                                     config->n_refiner_layers}
             : io::count_zimage_blocks(stripped);
  if (layout == io::ZImageLayout::Original)
    named = io::original_zimage_to_diffusers(stripped, counts);
  named = merge_loras(named, loras, io::zimage_weight_row_mappings(counts), "Z-Image transformer");
  if (!config)
    return ZImageTransformer(ZImageDiTConfig::infer_from_weights(named), named, placement);
  log::info("[zimage] {}: {} layout, {}", weights.description(), io::zimage_layout_name(layout),
            config->summary());
  return ZImageTransformer(*config, named, placement);
}

ZImageTransformer load_zimage_transformer(const std::filesystem::path& path,
                                          const std::optional<ZImageDiTConfig>& config,
                                          const Placement& placement, io::LoadQuantization quantize,
                                          std::span<const LoraFile> loras) {
  // A model folder (model_index.json, transformer/, vae/, ...) holds the transformer below.
  const std::filesystem::path where = io::component_folder(path, "transformer");
  const io::WeightStore weights =
      io::quantize_at_load(io::WeightStore::open(where), quantize, placement.device);
  // The first step would otherwise fault the mapped weights in from disk between its matmuls.
  if (placement.device == Device::CPU) io::read_ahead_in_background(weights, "zimage");
  if (config) return load_zimage_transformer(weights, config, placement, loras);
  if (const auto json = io::component_config_json(where))
    return load_zimage_transformer(weights, ZImageDiTConfig::from_json_file(*json), placement,
                                   loras);
  return load_zimage_transformer(weights, std::nullopt, placement, loras);
}

}  // namespace zflow::models
