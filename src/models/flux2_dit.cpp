#include "models/flux2_dit.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "backend/ops.h"
#include "core/error.h"
#include "core/file_io.h"
#include "core/log.h"
#include "io/key_map_flux.h"
#include "io/load_quantization.h"
#include "models/config_json.h"
#include "models/flux_block_names.h"
#include "models/flux_dit.h"
#include "models/timestep_embedding.h"

namespace zflow::models {
namespace {

using Model = Flux2Transformer;

constexpr float kTimeScale = 1000.0f;  // timestep * 1000 and guidance * 1000 in forward

Model::Mlp bind_mlp(ParameterBinder& bind, const std::string& prefix, const std::string& first,
                    const std::string& second, int64_t in, int64_t first_out, int64_t hidden,
                    int64_t out) {
  return {bind(prefix + first + ".weight", {first_out, in}),
          bind(prefix + second + ".weight", {out, hidden})};
}

struct Parts {
  Tensor x_embedder, context_embedder, norm_out, proj_out;
  Tensor modulation_img, modulation_txt, modulation_single;
  Model::Mlp time_embedder, guidance_embedder;
  std::vector<Model::DoubleBlock> double_blocks;
  std::vector<Model::SingleBlock> single_blocks;
};

// Flux2TransformerBlock, parameters in its state-dict order.
Model::DoubleBlock bind_double(ParameterBinder& bind, const std::string& p,
                               const Flux2DiTConfig& c) {
  const int64_t d = c.inner_dim(), hd = c.attention_head_dim, m = c.mlp_hidden_dim();
  Model::DoubleBlock b;
  b.img.q = bind(p + ".attn.to_q.weight", {d, d});
  b.img.k = bind(p + ".attn.to_k.weight", {d, d});
  b.img.v = bind(p + ".attn.to_v.weight", {d, d});
  b.img.norm_q = bind(p + ".attn.norm_q.weight", {hd});
  b.img.norm_k = bind(p + ".attn.norm_k.weight", {hd});
  b.img.out = bind(p + ".attn.to_out.0.weight", {d, d});
  b.txt.norm_q = bind(p + ".attn.norm_added_q.weight", {hd});
  b.txt.norm_k = bind(p + ".attn.norm_added_k.weight", {hd});
  b.txt.q = bind(p + ".attn.add_q_proj.weight", {d, d});
  b.txt.k = bind(p + ".attn.add_k_proj.weight", {d, d});
  b.txt.v = bind(p + ".attn.add_v_proj.weight", {d, d});
  b.txt.out = bind(p + ".attn.to_add_out.weight", {d, d});
  b.img.mlp = bind_mlp(bind, p + ".ff.", "linear_in", "linear_out", d, 2 * m, m, d);
  b.txt.mlp = bind_mlp(bind, p + ".ff_context.", "linear_in", "linear_out", d, 2 * m, m, d);
  return b;
}

// Flux2SingleTransformerBlock, parameters in its state-dict order.
Model::SingleBlock bind_single(ParameterBinder& bind, const std::string& p,
                               const Flux2DiTConfig& c) {
  const int64_t d = c.inner_dim(), hd = c.attention_head_dim, m = c.mlp_hidden_dim();
  Model::SingleBlock b;
  b.qkv_mlp = bind(p + ".attn.to_qkv_mlp_proj.weight", {3 * d + 2 * m, d});
  b.norm_q = bind(p + ".attn.norm_q.weight", {hd});
  b.norm_k = bind(p + ".attn.norm_k.weight", {hd});
  b.out = bind(p + ".attn.to_out.weight", {d, d + m});
  return b;
}

// The whole tree in diffusers' state-dict order.
Parts bind_all(ParameterBinder& bind, const Flux2DiTConfig& c) {
  const int64_t d = c.inner_dim(), tc = c.timestep_guidance_channels;
  Parts p;
  const std::string te = "time_guidance_embed.";
  p.time_embedder = bind_mlp(bind, te + "timestep_embedder.", "linear_1", "linear_2", tc, d, d, d);
  if (c.guidance_embeds)
    p.guidance_embedder =
        bind_mlp(bind, te + "guidance_embedder.", "linear_1", "linear_2", tc, d, d, d);
  p.modulation_img = bind("double_stream_modulation_img.linear.weight", {6 * d, d});
  p.modulation_txt = bind("double_stream_modulation_txt.linear.weight", {6 * d, d});
  p.modulation_single = bind("single_stream_modulation.linear.weight", {3 * d, d});
  p.x_embedder = bind("x_embedder.weight", {d, c.in_channels});
  p.context_embedder = bind("context_embedder.weight", {d, c.joint_attention_dim});
  for (int i = 0; i < c.num_layers; ++i)
    p.double_blocks.push_back(bind_double(bind, double_block_name(i), c));
  for (int i = 0; i < c.num_single_layers; ++i)
    p.single_blocks.push_back(bind_single(bind, single_block_name(i), c));
  p.norm_out = bind("norm_out.linear.weight", {2 * d, d});
  p.proj_out = bind("proj_out.weight", {c.out_channels, d});
  return p;
}

void validate(const Flux2DiTConfig& c, const std::string& source) {
  ZF_CHECK(c.num_attention_heads > 0 && c.attention_head_dim > 0 && c.attention_head_dim % 2 == 0,
           "[flux2] {}: {} heads of {} features: both must be positive, the head dim even", source,
           c.num_attention_heads, c.attention_head_dim);
  ZF_CHECK(!c.axes_dims_rope.empty(), "[flux2] {}: axes_dims_rope is empty", source);
  const int64_t axes =
      std::accumulate(c.axes_dims_rope.begin(), c.axes_dims_rope.end(), int64_t{0});
  ZF_CHECK(axes == c.attention_head_dim,
           "[flux2] {}: axes_dims_rope {} sum to {}, expected the head dim {}", source,
           c.axes_dims_rope, axes, c.attention_head_dim);
  for (int64_t a : c.axes_dims_rope)
    ZF_CHECK(a > 0 && a % 2 == 0, "[flux2] {}: axes_dims_rope {} has an entry that is not even",
             source, c.axes_dims_rope);
  ZF_CHECK(c.axes_dims_rope.size() <= std::tuple_size_v<Flux2Position>,
           "[flux2] {}: axes_dims_rope {} has more than 4 axes", source, c.axes_dims_rope);
  ZF_CHECK(c.in_channels > 0 && c.out_channels > 0 && c.joint_attention_dim > 0 &&
               c.timestep_guidance_channels > 0 && c.timestep_guidance_channels % 2 == 0,
           "[flux2] {}: channel counts must be positive (the timestep channels even)", source);
  // The single blocks' fused projection is read as whole heads (see single_block).
  ZF_CHECK(c.mlp_hidden_dim() > 0 && (2 * c.mlp_hidden_dim()) % c.attention_head_dim == 0,
           "[flux2] {}: mlp_ratio {} gives an MLP width {} that is not a multiple of half the head "
           "dim {}",
           source, c.mlp_ratio, c.mlp_hidden_dim(), c.attention_head_dim);
  ZF_CHECK(c.eps > 0, "[flux2] {}: eps {} must be positive", source, c.eps);
  ZF_CHECK(c.num_layers >= 0 && c.num_single_layers >= 0, "[flux2] {}: negative block count",
           source);
}

const Flux2DiTConfig& validated(const Flux2DiTConfig& c, const std::string& source) {
  validate(c, source);
  return c;
}

// Chunk `i` of `n` equal chunks of mod[B, n * dim] (a strided view).
Tensor chunk(const Tensor& mod, int i, int64_t dim) {
  return mod.slice(1, i * dim, (i + 1) * dim);
}

// Flux2FeedForward: linear_in to (gate, value), silu(gate) * value, linear_out.
Tensor swiglu_mlp(const Model::Mlp& m, const Tensor& x) {
  const Tensor h = ops::linear(x, m.first);
  const int64_t hidden = h.size(-1) / 2;
  return ops::linear(ops::silu_mul(h.slice(-1, 0, hidden), h.slice(-1, hidden, 2 * hidden)),
                     m.second);
}

// TimestepEmbedding: Linear -> SiLU -> Linear.
Tensor silu_mlp(const Model::Mlp& m, const Tensor& x) {
  return ops::linear(ops::silu(ops::linear(x, m.first)), m.second);
}

}  // namespace

Flux2DiTConfig Flux2DiTConfig::klein_4b() {
  Flux2DiTConfig c;
  c.num_layers = 5;
  c.num_single_layers = 20;
  c.num_attention_heads = 24;
  c.joint_attention_dim = 7680;
  c.guidance_embeds = false;
  return c;
}

Flux2DiTConfig Flux2DiTConfig::klein_9b() {
  Flux2DiTConfig c;
  c.num_layers = 8;
  c.num_single_layers = 24;
  c.num_attention_heads = 32;
  c.joint_attention_dim = 12288;
  c.guidance_embeds = false;
  return c;
}

std::string Flux2DiTConfig::summary() const {
  return fmt::format(
      "{} double + {} single blocks, {} heads x {} (inner {}), mlp ratio {}, in {} out {}, text "
      "{}, guidance embedder {}, axes_dims_rope {}, theta {}",
      num_layers, num_single_layers, num_attention_heads, attention_head_dim, inner_dim(),
      mlp_ratio, in_channels, out_channels, joint_attention_dim,
      guidance_embeds ? "yes (dev)" : "no (klein)", axes_dims_rope, rope_theta);
}

Flux2DiTConfig Flux2DiTConfig::from_json(const std::string& json_text, const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "flux2", source, "Flux2Transformer2DModel");
  Flux2DiTConfig c;
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[flux2] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
  };
  int64_t patch = 1;
  read("patch_size", patch);
  ZF_CHECK(patch == 1, "[flux2] {}: patch_size {} is not supported (the AE patchifies 2x2)", source,
           patch);
  read("in_channels", c.in_channels);
  c.out_channels = c.in_channels;
  read("out_channels", c.out_channels);
  read("num_layers", c.num_layers);
  read("num_single_layers", c.num_single_layers);
  read("attention_head_dim", c.attention_head_dim);
  read("num_attention_heads", c.num_attention_heads);
  read("joint_attention_dim", c.joint_attention_dim);
  read("timestep_guidance_channels", c.timestep_guidance_channels);
  read("mlp_ratio", c.mlp_ratio);
  read("axes_dims_rope", c.axes_dims_rope);
  read("rope_theta", c.rope_theta);
  read("eps", c.eps);
  read("guidance_embeds", c.guidance_embeds);
  validate(c, source);
  return c;
}

Flux2DiTConfig Flux2DiTConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "flux2"), path.string());
}

Flux2DiTConfig Flux2DiTConfig::infer_from_weights(const io::WeightStore& w) {
  const FluxShapes s = FluxShapes::of(w, "flux2");
  Flux2DiTConfig c;
  c.in_channels = s.in_channels;
  c.out_channels = s.out_channels;
  c.num_layers = s.blocks.double_blocks;
  c.num_single_layers = s.blocks.single_blocks;
  c.attention_head_dim = s.head_dim;
  c.num_attention_heads = s.inner_dim / s.head_dim;
  c.joint_attention_dim = s.joint_attention_dim;
  c.guidance_embeds = s.guidance_embeds;
  c.timestep_guidance_channels = s.dim("time_guidance_embed.timestep_embedder.linear_1.weight", 1);
  const int64_t hidden =
      s.blocks.double_blocks > 0
          ? s.dim("transformer_blocks.0.ff.linear_out.weight", 1)
          : s.dim("single_transformer_blocks.0.attn.to_out.weight", 1) - s.inner_dim;
  c.mlp_ratio = static_cast<double>(hidden) / static_cast<double>(s.inner_dim);
  validate(c, w.description());
  ZF_CHECK(c.mlp_hidden_dim() == hidden,
           "[flux2] {}: an MLP width of {} is no whole ratio of the width {}; give the model's "
           "config.json",
           w.description(), hidden, s.inner_dim);
  log::info("[flux2] {}: no config.json, inferred from weight shapes: {}", w.description(),
            c.summary());
  return c;
}

std::vector<ParameterSpec> flux2_dit_parameters(const Flux2DiTConfig& config) {
  validate(config, "config");
  ParameterBinder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

io::WeightStore flux2_dit_random_weights(const Flux2DiTConfig& config, DType dtype, uint64_t seed,
                                         Device device) {
  return random_weights(flux2_dit_parameters(config), dtype, seed, device);
}

double flux2_dit_forward_flops(const Flux2DiTConfig& c, int64_t image_tokens, int64_t text_tokens,
                               int64_t cached_reference_tokens) {
  const double d = static_cast<double>(c.inner_dim()), m = static_cast<double>(c.mlp_hidden_dim());
  const double n = static_cast<double>(image_tokens), l = static_cast<double>(text_tokens);
  const double s = n + l, keys = s + static_cast<double>(cached_reference_tokens);
  // Per token and block: a double block's stream runs q, k, v, out (4 d^2) and its SwiGLU MLP
  // (d 2m in, m d out); a single block runs the fused projection (d (3d + 2m)) and the output
  // ((d + m) d). Attention: q k^T and p v, 2 s^2 d multiply-adds.
  const double per_double = 2 * s * (4 * d * d + 3 * d * m) + 4 * s * keys * d;
  const double per_single = 2 * s * (d * (3 * d + 2 * m) + (d + m) * d) + 4 * s * keys * d;
  const double embed = 2 * n * static_cast<double>(c.in_channels) * d +
                       2 * l * static_cast<double>(c.joint_attention_dim) * d +
                       2 * n * d * static_cast<double>(c.out_channels);
  return c.num_layers * per_double + c.num_single_layers * per_single + embed;
}

std::vector<Flux2Position> flux2_image_ids(int64_t rows, int64_t cols, float t) {
  std::vector<Flux2Position> ids;
  ids.reserve(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      ids.push_back({t, static_cast<float>(r), static_cast<float>(c), 0.0f});
  return ids;
}

Flux2Transformer::Flux2Transformer(const Flux2DiTConfig& config, const io::WeightStore& weights,
                                   const Placement& placement)
    : config_(validated(config, weights.description())), placement_(placement) {
  std::vector<ParameterSpec> used;
  Parts p =
      bind_placed(weights, placement_, config_.summary(),
                  flux_block_prefixes(config_.num_layers, config_.num_single_layers), "flux2",
                  offload_, used, [&](ParameterBinder& bind) { return bind_all(bind, config_); });
  x_embedder_ = p.x_embedder;
  context_embedder_ = p.context_embedder;
  norm_out_ = p.norm_out;
  proj_out_ = p.proj_out;
  modulation_img_ = p.modulation_img;
  modulation_txt_ = p.modulation_txt;
  modulation_single_ = p.modulation_single;
  time_embedder_ = p.time_embedder;
  guidance_embedder_ = p.guidance_embedder;
  double_blocks_ = std::move(p.double_blocks);
  single_blocks_ = std::move(p.single_blocks);
  if (used.size() != weights.size())
    log::warn("[flux2] {}: {} of its {} tensors are not part of the model ({})",
              weights.description(), weights.size() - used.size(), weights.size(),
              config_.summary());
}

// QK-normed, rotated q and k and plain v [B, S, H, hd] of the joint sequence -> unmasked SDPA
// with scale 1/sqrt(hd): [B, S, inner]. A reference cache's keys and values join this sequence's
// (their order does not matter to attention); the reference pass keeps its own.
Tensor Flux2Transformer::attend(const Tensor& q, const Tensor& k, const Tensor& v, KvUse kv) const {
  const int64_t b = q.size(0), s = q.size(1), hd = config_.attention_head_dim;
  if (kv.keep) *kv.keep = {k.contiguous(), v.contiguous()};
  auto heads_first = [](const Tensor& x) { return x.permute({0, 2, 1, 3}); };
  const Tensor keys = kv.extra ? ops::concat({k, kv.extra->k}, 1) : k;
  const Tensor values = kv.extra ? ops::concat({v, kv.extra->v}, 1) : v;
  const Tensor o = ops::attention(heads_first(q), heads_first(keys), heads_first(values),
                                  1.0f / std::sqrt(static_cast<float>(hd)));
  return o.permute({0, 2, 1, 3}).contiguous().view({b, s, config_.inner_dim()});
}

// Flux2TransformerBlock: both streams are modulated by their shared (shift, scale, gate) x 2,
// attend jointly over [text ; image], and update with gated residuals:
//   x += gate1 * out(attn(LN(x) * (1 + scale1) + shift1))
//   x += gate2 * SwiGLU(LN(x) * (1 + scale2) + shift2)
void Flux2Transformer::double_block(const DoubleBlock& blk, Tensor& img, Tensor* txt,
                                    const Modulations& mod, const RopeTables& rope,
                                    KvUse kv) const {
  const int64_t d = config_.inner_dim(), l = txt ? txt->size(1) : 0, s = l + img.size(1);
  const float eps = static_cast<float>(config_.eps);
  const int64_t heads = config_.num_attention_heads, hd = config_.attention_head_dim;
  const Tensor ni = ops::layer_norm_modulate(img, eps, chunk(mod.img, 0, d), chunk(mod.img, 1, d));
  const Tensor nt =
      txt ? ops::layer_norm_modulate(*txt, eps, chunk(mod.txt, 0, d), chunk(mod.txt, 1, d))
          : Tensor{};
  // Each stream's q, k and v in one call (int8 weights quantise its input once), as heads; then
  // each stream's QK-norm and RoPE at its own rows of the joint tables.
  auto project = [&](const Stream& st, const Tensor& x) {
    std::vector<Tensor> qkv = ops::linears(x, {st.q, st.k, st.v});
    for (Tensor& y : qkv) y = y.view({x.size(0), x.size(1), heads, hd});
    return qkv;
  };
  const std::vector<Tensor> pi = project(blk.img, ni);
  const std::vector<Tensor> pt = txt ? project(blk.txt, nt) : std::vector<Tensor>(3);
  auto rotated = [&](const Tensor& y, const Tensor& norm, int64_t from, int64_t to) {
    return ops::rms_norm_rope(y, norm, eps, rope.cos.slice(1, from, to),
                              rope.sin.slice(1, from, to), ops::RopeLayout::kInterleaved);
  };
  auto joint = [&](Tensor text, Tensor image) {
    return txt ? ops::concat({std::move(text), std::move(image)}, 1) : image;
  };
  const Tensor q = joint(txt ? rotated(pt[0], blk.txt.norm_q, 0, l) : Tensor{},
                         rotated(pi[0], blk.img.norm_q, l, s));
  const Tensor k = joint(txt ? rotated(pt[1], blk.txt.norm_k, 0, l) : Tensor{},
                         rotated(pi[1], blk.img.norm_k, l, s));
  const Tensor v = joint(pt[2], pi[2]);
  const Tensor o = attend(q, k, v, kv);
  auto update = [&](const Stream& st, Tensor& x, const Tensor& m, const Tensor& attn) {
    x = ops::add_gated(x, chunk(m, 2, d), ops::linear(attn, st.out));
    const Tensor n = ops::layer_norm_modulate(x, eps, chunk(m, 3, d), chunk(m, 4, d));
    x = ops::add_gated(x, chunk(m, 5, d), swiglu_mlp(st.mlp, n));
  };
  update(blk.img, img, mod.img, o.slice(1, l, s));
  if (txt) update(blk.txt, *txt, mod.txt, o.slice(1, 0, l));
}

// Flux2SingleTransformerBlock on the joint sequence x[B, S, inner], attention and MLP in
// parallel from one projection: n = LN(x) * (1 + scale) + shift, [q k v gate value] = W n,
//   x += gate_mod * out(cat(attn(q, k, v), silu(gate) * value))
void Flux2Transformer::single_block(const SingleBlock& blk, Tensor& x, const Tensor& mod,
                                    const RopeTables& rope, KvUse kv) const {
  const int64_t d = config_.inner_dim(), m = config_.mlp_hidden_dim();
  const int64_t b = x.size(0), s = x.size(1), heads = config_.num_attention_heads,
                hd = config_.attention_head_dim;
  const float eps = static_cast<float>(config_.eps);
  const Tensor n = ops::layer_norm_modulate(x, eps, chunk(mod, 0, d), chunk(mod, 1, d));
  const Tensor y = ops::linear(n, blk.qkv_mlp);  // [B, S, 3d + 2m]
  // q, k and v as head views of the projection's first 3 d features (validate() made its width
  // a whole number of heads).
  const Tensor as_heads = y.view({b, s, (3 * d + 2 * m) / hd, hd});
  auto part = [&](int i) { return as_heads.slice(2, i * heads, (i + 1) * heads); };
  auto rotated = [&](const Tensor& h, const Tensor& norm) {
    return ops::rms_norm_rope(h, norm, eps, rope.cos, rope.sin, ops::RopeLayout::kInterleaved);
  };
  const Tensor attn =
      attend(rotated(part(0), blk.norm_q), rotated(part(1), blk.norm_k), part(2), kv);
  const Tensor mlp =
      ops::silu_mul(y.slice(2, 3 * d, 3 * d + m), y.slice(2, 3 * d + m, 3 * d + 2 * m));
  x = ops::add_gated(x, chunk(mod, 2, d), ops::linear(ops::concat({attn, mlp}, 2), blk.out));
}

// The conditioning vector: timestep_embedder(sinusoid(t * 1000)) [+ guidance_embedder(sinusoid(
// g * 1000))]; every modulation reads SiLU of it, and the three shared modulations are computed
// once.
Flux2Transformer::Modulations Flux2Transformer::modulations(std::span<const float> t,
                                                            std::span<const float> guidance) const {
  const Flux2DiTConfig& c = config_;
  auto features = [&](std::span<const float> v) {
    std::vector<float> scaled(v.begin(), v.end());
    for (float& e : scaled) e *= kTimeScale;
    return placement_.activation(timestep_features(scaled, c.timestep_guidance_channels));
  };
  Tensor temb = silu_mlp(time_embedder_, features(t));
  if (c.guidance_embeds) temb = ops::add(temb, silu_mlp(guidance_embedder_, features(guidance)));
  const Tensor vec = ops::silu(temb);
  return {vec, ops::linear(vec, modulation_img_), ops::linear(vec, modulation_txt_),
          ops::linear(vec, modulation_single_)};
}

// RoPE over [text (0, 0, 0, k) for k < text_tokens ; image ids], one table for the joint sequence.
RopeTables Flux2Transformer::rope_tables(int64_t text_tokens,
                                         std::span<const Flux2Position> img_ids) const {
  const Flux2DiTConfig& c = config_;
  const size_t axes = c.axes_dims_rope.size();
  std::vector<float> positions;
  positions.reserve(static_cast<size_t>(text_tokens + std::ssize(img_ids)) * axes);
  auto add_position = [&](const Flux2Position& p) {
    positions.insert(positions.end(), p.begin(), p.begin() + static_cast<ptrdiff_t>(axes));
  };
  for (int64_t k = 0; k < text_tokens; ++k) add_position({0.0f, 0.0f, 0.0f, static_cast<float>(k)});
  for (const Flux2Position& p : img_ids) add_position(p);
  return flux_rope_tables(positions, c.axes_dims_rope, c.rope_theta, placement_.device);
}

Tensor Flux2Transformer::run_blocks(Tensor img, Tensor* txt, const Modulations& mod,
                                    const RopeTables& rope,
                                    const std::function<KvUse(size_t)>& kv) const {
  const Flux2DiTConfig& c = config_;
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  for (size_t i = 0; i < double_blocks_.size(); ++i) {
    std::optional<BlockLease> lease;
    double_block(block_to_run(offload_.get(), lease, i, double_blocks_[i],
                              [&](ParameterBinder& bind) {
                                return bind_double(bind, double_block_name(i), c);
                              }),
                 img, txt, mod, rope, kv(i));
  }
  Tensor joint = txt ? ops::concat({*txt, img}, 1) : img;
  for (size_t i = 0; i < single_blocks_.size(); ++i) {
    const size_t at = double_blocks_.size() + i;
    std::optional<BlockLease> lease;
    single_block(block_to_run(offload_.get(), lease, at, single_blocks_[i],
                              [&](ParameterBinder& bind) {
                                return bind_single(bind, single_block_name(i), c);
                              }),
                 joint, mod.single, rope, kv(at));
  }
  return joint;
}

namespace {

void check_tokens(const Tensor& x, int64_t in_channels, std::string_view what) {
  auto is_activation = [](DType d) { return d == DType::F32 || d == DType::BF16; };
  ZF_CHECK(x.ndim() == 3 && x.size(0) >= 1 && x.size(1) >= 1 && x.size(2) == in_channels &&
               is_activation(x.dtype()),
           "[flux2] {}: tokens {} {}, expected F32 or BF16 [B, N, {}]", what, shape_str(x.shape()),
           dtype_name(x.dtype()), in_channels);
}

}  // namespace

Tensor Flux2Transformer::forward(const Tensor& x, std::span<const Flux2Position> img_ids,
                                 const Tensor& txt_in, std::span<const float> t,
                                 std::span<const float> guidance,
                                 const Flux2ReferenceCache* references) const {
  const Flux2DiTConfig& c = config_;
  check_tokens(x, c.in_channels, "forward: image");
  const int64_t batch = x.size(0), n = x.size(1);
  ZF_CHECK(static_cast<int64_t>(img_ids.size()) == n, "[flux2] forward: {} image ids for {} tokens",
           img_ids.size(), n);
  ZF_CHECK(txt_in.ndim() == 3 && txt_in.size(0) == batch && txt_in.size(1) >= 1 &&
               txt_in.size(2) == c.joint_attention_dim &&
               (txt_in.dtype() == DType::F32 || txt_in.dtype() == DType::BF16),
           "[flux2] forward: text states {} {}, expected F32 or BF16 [{}, L, {}]",
           shape_str(txt_in.shape()), dtype_name(txt_in.dtype()), batch, c.joint_attention_dim);
  ZF_CHECK(static_cast<int64_t>(t.size()) == batch, "[flux2] forward: {} timesteps for {} samples",
           t.size(), batch);
  ZF_CHECK(static_cast<int64_t>(guidance.size()) == (c.guidance_embeds ? batch : 0),
           "[flux2] forward: {} guidance values for {} samples; the model {} a guidance embedder",
           guidance.size(), batch, c.guidance_embeds ? "has" : "has no");
  if (references)
    ZF_CHECK(references->blocks.size() == double_blocks_.size() + single_blocks_.size() &&
                 references->blocks.front().k.size(0) == batch,
             "[flux2] forward: a reference cache of {} blocks for batch {}, expected {} blocks "
             "for batch {}",
             references->blocks.size(), references->blocks.front().k.size(0),
             double_blocks_.size() + single_blocks_.size(), batch);

  // Every input goes to the placement once; the result comes back as float32 where x was.
  const Placement& at = placement_;
  Tensor ctx = ops::linear(at.activation(txt_in), context_embedder_);
  const int64_t l = ctx.size(1), s = l + n;
  const Modulations mod = modulations(t, guidance);
  const Tensor joint =
      run_blocks(ops::linear(at.activation(x), x_embedder_), &ctx, mod, rope_tables(l, img_ids),
                 [&](size_t i) { return KvUse{references ? &references->blocks[i] : nullptr}; });

  // AdaLayerNormContinuous on the image tokens ((scale, shift) in diffusers' order), then the
  // projection to the latent channels.
  const int64_t d = c.inner_dim();
  const Tensor out_mod = ops::linear(mod.vec, norm_out_);
  const Tensor out = ops::layer_norm_modulate(joint.slice(1, l, s), static_cast<float>(c.eps),
                                              chunk(out_mod, 1, d), chunk(out_mod, 0, d));
  return float32_on(ops::linear(out, proj_out_), x.device());
}

Flux2ReferenceCache Flux2Transformer::reference_cache(const Tensor& refs,
                                                      std::span<const Flux2Position> ref_ids,
                                                      float t_ref,
                                                      std::span<const float> guidance) const {
  check_tokens(refs, config_.in_channels, "reference cache: reference");
  const int64_t batch = refs.size(0);
  ZF_CHECK(static_cast<int64_t>(ref_ids.size()) == refs.size(1),
           "[flux2] reference cache: {} ids for {} reference tokens", ref_ids.size(), refs.size(1));
  ZF_CHECK(static_cast<int64_t>(guidance.size()) == (config_.guidance_embeds ? batch : 0),
           "[flux2] reference cache: {} guidance values for {} samples", guidance.size(), batch);
  Flux2ReferenceCache cache;
  cache.blocks.resize(double_blocks_.size() + single_blocks_.size());
  run_blocks(ops::linear(placement_.activation(refs), x_embedder_), nullptr,
             modulations(std::vector<float>(static_cast<size_t>(batch), t_ref), guidance),
             rope_tables(0, ref_ids), [&](size_t i) {
               return KvUse{nullptr, &cache.blocks[i]};
             });
  return cache;
}

Flux2Transformer load_flux2_transformer(const io::WeightStore& weights,
                                        const std::optional<Flux2DiTConfig>& config,
                                        const Placement& placement,
                                        std::span<const LoraFile> loras) {
  const io::WeightStore own = io::flux_transformer_weights(weights);
  ZF_CHECK(io::detect_flux_generation(own) == io::FluxGeneration::Flux2,
           "[flux2] {}: a FLUX.1 transformer, not FLUX.2 (it has no "
           "'double_stream_modulation_img' weights)",
           weights.description());
  const io::FluxLayout layout = io::detect_flux_layout(own);
  const io::WeightStore named = merge_loras(
      layout == io::FluxLayout::Original ? io::original_flux_to_diffusers(own) : own, loras,
      io::flux_row_mappings(io::FluxGeneration::Flux2, io::count_flux_blocks(own)),
      "FLUX.2 transformer");
  if (!config) return Flux2Transformer(Flux2DiTConfig::infer_from_weights(named), named, placement);
  const bool has_guidance = io::flux_has_guidance(named);
  if (config->guidance_embeds != has_guidance)
    fail(
        "[flux2] {}: the config says guidance_embeds {} but the weights {} a guidance embedder "
        "(FLUX.2-dev has one, klein has none)",
        weights.description(), config->guidance_embeds, has_guidance ? "have" : "have no");
  log::info("[flux2] {}: {} layout, {}", weights.description(), io::flux_layout_name(layout),
            config->summary());
  return Flux2Transformer(*config, named, placement);
}

Flux2Transformer load_flux2_transformer(const std::filesystem::path& path,
                                        const std::optional<Flux2DiTConfig>& config,
                                        io::LoadQuantization quantize, const Placement& placement,
                                        std::span<const LoraFile> loras) {
  // A model folder (model_index.json, transformer/, vae/, ...) holds the transformer below.
  const std::filesystem::path where = io::component_folder(path, "transformer");
  const io::WeightStore weights =
      io::quantize_at_load(io::WeightStore::open(where), quantize, placement.device);
  // The first step would otherwise fault the mapped weights in from disk between its matmuls.
  if (placement.device == Device::CPU) io::read_ahead_in_background(weights, "flux2");
  if (config) return load_flux2_transformer(weights, config, placement, loras);
  if (const auto json = io::component_config_json(where))
    return load_flux2_transformer(weights, Flux2DiTConfig::from_json_file(*json), placement, loras);
  return load_flux2_transformer(weights, std::nullopt, placement, loras);
}

}  // namespace zflow::models
