#include "models/flux_dit.h"

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
#include "models/timestep_embedding.h"

namespace zflow::models {
namespace {

using Model = FluxTransformer;

constexpr int64_t kTimestepFeatures = 256;  // Timesteps(num_channels=256)
constexpr float kTimeScale = 1000.0f;       // timestep * 1000 and guidance * 1000 in forward
constexpr float kNormEps = 1e-6f;           // every LayerNorm and QK RMSNorm of the model

Model::Linear bind_linear(ParameterBinder& bind, const std::string& prefix, int64_t in,
                          int64_t out) {
  return {bind(prefix + ".weight", {out, in}), bind(prefix + ".bias", {out})};
}

Model::Mlp bind_mlp(ParameterBinder& bind, const std::string& first, const std::string& second,
                    int64_t in, int64_t hidden, int64_t out) {
  return {bind_linear(bind, first, in, hidden), bind_linear(bind, second, hidden, out)};
}

struct Parts {
  Model::Linear x_embedder, context_embedder, norm_out, proj_out;
  Model::Mlp time_embedder, guidance_embedder, text_embedder;
  std::vector<Model::DoubleBlock> double_blocks;
  std::vector<Model::SingleBlock> single_blocks;
};

// FluxTransformerBlock, parameters in its state-dict order.
Model::DoubleBlock bind_double(ParameterBinder& bind, const std::string& p,
                               const FluxDiTConfig& c) {
  const int64_t d = c.inner_dim(), hd = c.attention_head_dim, m = c.mlp_hidden_dim();
  Model::DoubleBlock b;
  b.img.modulation = bind_linear(bind, p + ".norm1.linear", d, 6 * d);
  b.txt.modulation = bind_linear(bind, p + ".norm1_context.linear", d, 6 * d);
  b.img.norm_q = bind(p + ".attn.norm_q.weight", {hd});
  b.img.norm_k = bind(p + ".attn.norm_k.weight", {hd});
  b.img.q = bind_linear(bind, p + ".attn.to_q", d, d);
  b.img.k = bind_linear(bind, p + ".attn.to_k", d, d);
  b.img.v = bind_linear(bind, p + ".attn.to_v", d, d);
  b.img.out = bind_linear(bind, p + ".attn.to_out.0", d, d);
  b.txt.norm_q = bind(p + ".attn.norm_added_q.weight", {hd});
  b.txt.norm_k = bind(p + ".attn.norm_added_k.weight", {hd});
  b.txt.q = bind_linear(bind, p + ".attn.add_q_proj", d, d);
  b.txt.k = bind_linear(bind, p + ".attn.add_k_proj", d, d);
  b.txt.v = bind_linear(bind, p + ".attn.add_v_proj", d, d);
  b.txt.out = bind_linear(bind, p + ".attn.to_add_out", d, d);
  b.img.mlp = bind_mlp(bind, p + ".ff.net.0.proj", p + ".ff.net.2", d, m, d);
  b.txt.mlp = bind_mlp(bind, p + ".ff_context.net.0.proj", p + ".ff_context.net.2", d, m, d);
  return b;
}

// FluxSingleTransformerBlock, parameters in its state-dict order.
Model::SingleBlock bind_single(ParameterBinder& bind, const std::string& p,
                               const FluxDiTConfig& c) {
  const int64_t d = c.inner_dim(), hd = c.attention_head_dim, m = c.mlp_hidden_dim();
  Model::SingleBlock b;
  b.modulation = bind_linear(bind, p + ".norm.linear", d, 3 * d);
  b.proj_mlp = bind_linear(bind, p + ".proj_mlp", d, m);
  b.proj_out = bind_linear(bind, p + ".proj_out", d + m, d);
  b.norm_q = bind(p + ".attn.norm_q.weight", {hd});
  b.norm_k = bind(p + ".attn.norm_k.weight", {hd});
  b.q = bind_linear(bind, p + ".attn.to_q", d, d);
  b.k = bind_linear(bind, p + ".attn.to_k", d, d);
  b.v = bind_linear(bind, p + ".attn.to_v", d, d);
  return b;
}

// The whole tree in diffusers' state-dict order.
Parts bind_all(ParameterBinder& bind, const FluxDiTConfig& c) {
  const int64_t d = c.inner_dim();
  Parts p;
  const std::string te = "time_text_embed.";
  p.time_embedder = bind_mlp(bind, te + "timestep_embedder.linear_1",
                             te + "timestep_embedder.linear_2", kTimestepFeatures, d, d);
  if (c.guidance_embeds)
    p.guidance_embedder = bind_mlp(bind, te + "guidance_embedder.linear_1",
                                   te + "guidance_embedder.linear_2", kTimestepFeatures, d, d);
  p.text_embedder = bind_mlp(bind, te + "text_embedder.linear_1", te + "text_embedder.linear_2",
                             c.pooled_projection_dim, d, d);
  p.context_embedder = bind_linear(bind, "context_embedder", c.joint_attention_dim, d);
  p.x_embedder = bind_linear(bind, "x_embedder", c.in_channels, d);
  for (int i = 0; i < c.num_layers; ++i)
    p.double_blocks.push_back(bind_double(bind, double_block_name(i), c));
  for (int i = 0; i < c.num_single_layers; ++i)
    p.single_blocks.push_back(bind_single(bind, single_block_name(i), c));
  if (c.final_layer) {
    p.norm_out = bind_linear(bind, "norm_out.linear", d, 2 * d);
    p.proj_out = bind_linear(bind, "proj_out", d, c.out_channels);
  }
  return p;
}

void validate(const FluxDiTConfig& c, const std::string& source) {
  ZF_CHECK(c.num_attention_heads > 0 && c.attention_head_dim > 0 && c.attention_head_dim % 2 == 0,
           "[flux] {}: {} heads of {} features: both must be positive, the head dim even", source,
           c.num_attention_heads, c.attention_head_dim);
  ZF_CHECK(c.axes_dims_rope.size() == 3, "[flux] {}: axes_dims_rope {} must have 3 entries", source,
           c.axes_dims_rope);
  const int64_t axes =
      std::accumulate(c.axes_dims_rope.begin(), c.axes_dims_rope.end(), int64_t{0});
  ZF_CHECK(axes == c.attention_head_dim,
           "[flux] {}: axes_dims_rope {} sum to {}, expected the head dim {}", source,
           c.axes_dims_rope, axes, c.attention_head_dim);
  for (int64_t a : c.axes_dims_rope)
    ZF_CHECK(a > 0 && a % 2 == 0, "[flux] {}: axes_dims_rope {} has an entry that is not even",
             source, c.axes_dims_rope);
  ZF_CHECK(c.in_channels > 0 && c.out_channels > 0 && c.joint_attention_dim > 0 &&
               c.pooled_projection_dim > 0,
           "[flux] {}: channel counts must be positive", source);
  ZF_CHECK(c.num_layers >= 0 && c.num_single_layers >= 0, "[flux] {}: negative block count",
           source);
}

const FluxDiTConfig& validated(const FluxDiTConfig& c, const std::string& source) {
  validate(c, source);
  return c;
}

Tensor apply(const Model::Linear& l, const Tensor& x) {
  return ops::linear(x, l.weight, l.bias);
}

// The linears that read one x, in one call: int8 weights quantise x once for all of them.
std::vector<Tensor> apply_all(const std::vector<Model::Linear>& ls, const Tensor& x) {
  std::vector<Tensor> ws, bs;
  for (const Model::Linear& l : ls) {
    ws.push_back(l.weight);
    bs.push_back(l.bias);
  }
  return ops::linears(x, ws, bs);
}

// The embedders' MLPs (TimestepEmbedding, PixArtAlphaTextProjection): Linear -> SiLU -> Linear.
Tensor silu_mlp(const Model::Mlp& m, const Tensor& x) {
  return apply(m.second, ops::silu(apply(m.first, x)));
}

// The blocks' FeedForward: Linear -> GELU(tanh) -> Linear.
Tensor gelu_mlp(const Model::Mlp& m, const Tensor& x) {
  return apply(m.second, ops::gelu(apply(m.first, x), ops::GeluKind::kTanh));
}

// Chunk `i` of `n` equal chunks of mod[B, n * dim] (a strided view).
Tensor chunk(const Tensor& mod, int i, int64_t dim) {
  return mod.slice(1, i * dim, (i + 1) * dim);
}

}  // namespace

FluxDiTConfig FluxDiTConfig::schnell() {
  FluxDiTConfig c;
  c.guidance_embeds = false;
  return c;
}

std::string FluxDiTConfig::summary() const {
  return fmt::format(
      "{} double + {} single blocks, {} heads x {} (inner {}), in {} out {}, text {} pooled {}, "
      "guidance embedder {}, axes_dims_rope {}",
      num_layers, num_single_layers, num_attention_heads, attention_head_dim, inner_dim(),
      in_channels, out_channels, joint_attention_dim, pooled_projection_dim,
      guidance_embeds ? "yes (dev)" : "no (schnell)", axes_dims_rope);
}

FluxDiTConfig FluxDiTConfig::from_json(const std::string& json_text, const std::string& source) {
  const nlohmann::json j = parse_config_json(json_text, "flux", source, "FluxTransformer2DModel");
  FluxDiTConfig c;
  c.guidance_embeds = false;  // diffusers' default when the field is absent
  auto read = [&](const char* key, auto& field) {
    if (!j.contains(key) || j[key].is_null()) return;
    try {
      j[key].get_to(field);
    } catch (const nlohmann::json::exception&) {
      fail("[flux] {}: field '{}' has the wrong type: {}", source, key, j[key].dump());
    }
  };
  int64_t patch = 1;
  read("patch_size", patch);
  ZF_CHECK(patch == 1, "[flux] {}: patch_size {} is not supported (FLUX.1 packs 2x2 outside)",
           source, patch);
  read("in_channels", c.in_channels);
  c.out_channels = c.in_channels;
  read("out_channels", c.out_channels);
  read("num_layers", c.num_layers);
  read("num_single_layers", c.num_single_layers);
  read("attention_head_dim", c.attention_head_dim);
  read("num_attention_heads", c.num_attention_heads);
  read("joint_attention_dim", c.joint_attention_dim);
  read("pooled_projection_dim", c.pooled_projection_dim);
  read("guidance_embeds", c.guidance_embeds);
  read("axes_dims_rope", c.axes_dims_rope);
  validate(c, source);
  return c;
}

FluxDiTConfig FluxDiTConfig::from_json_file(const std::filesystem::path& path) {
  return from_json(read_text_file(path, "flux"), path.string());
}

int64_t FluxShapes::dim(const std::string& name, int d) const {
  const Tensor t = weights->get(name);
  ZF_CHECK(t.ndim() > d, "[{}] {}: '{}' has shape {}, too few dims", tag, weights->description(),
           name, shape_str(t.shape()));
  return t.size(d);
}

FluxShapes FluxShapes::of(const io::WeightStore& w, std::string tag) {
  FluxShapes s{&w, std::move(tag)};
  s.inner_dim = s.dim("x_embedder.weight", 0);
  s.in_channels = s.dim("x_embedder.weight", 1);
  s.out_channels = w.contains("proj_out.weight") ? s.dim("proj_out.weight", 0) : s.in_channels;
  s.blocks = io::count_flux_blocks(w);
  s.head_dim = s.dim(s.blocks.double_blocks > 0 ? "transformer_blocks.0.attn.norm_q.weight"
                                                : "single_transformer_blocks.0.attn.norm_q.weight",
                     0);
  ZF_CHECK(s.inner_dim % s.head_dim == 0, "[{}] {}: head dim {} does not divide width {}", s.tag,
           w.description(), s.head_dim, s.inner_dim);
  ZF_CHECK(s.head_dim == 128,
           "[{}] {}: head dim {} differs from the release's 128, and the weights do not record "
           "axes_dims_rope; give the model's config.json",
           s.tag, w.description(), s.head_dim);
  s.joint_attention_dim = s.dim("context_embedder.weight", 1);
  s.guidance_embeds = io::flux_has_guidance(w);
  return s;
}

FluxDiTConfig FluxDiTConfig::infer_from_weights(const io::WeightStore& w) {
  const FluxShapes s = FluxShapes::of(w, "flux");
  FluxDiTConfig c;
  c.in_channels = s.in_channels;
  c.out_channels = s.out_channels;
  c.num_layers = s.blocks.double_blocks;
  c.num_single_layers = s.blocks.single_blocks;
  c.attention_head_dim = s.head_dim;
  c.num_attention_heads = s.inner_dim / s.head_dim;
  c.joint_attention_dim = s.joint_attention_dim;
  c.pooled_projection_dim = s.dim("time_text_embed.text_embedder.linear_1.weight", 1);
  c.guidance_embeds = s.guidance_embeds;
  validate(c, w.description());
  log::info("[flux] {}: no config.json, inferred from weight shapes: {}", w.description(),
            c.summary());
  return c;
}

std::vector<ParameterSpec> flux_dit_parameters(const FluxDiTConfig& config) {
  validate(config, "config");
  ParameterBinder bind(nullptr);
  bind_all(bind, config);
  return bind.take_specs();
}

io::WeightStore flux_dit_random_weights(const FluxDiTConfig& config, DType dtype, uint64_t seed,
                                        Device device) {
  return random_weights(flux_dit_parameters(config), dtype, seed, device);
}

double flux_dit_forward_flops(const FluxDiTConfig& c, int64_t image_tokens, int64_t text_tokens) {
  const double d = static_cast<double>(c.inner_dim()), m = static_cast<double>(c.mlp_hidden_dim());
  const double n = static_cast<double>(image_tokens), l = static_cast<double>(text_tokens);
  const double s = n + l;
  // Per token and block: a double block's stream runs q, k, v, out (4 d^2) and its MLP (2 d m);
  // a single block runs q, k, v (3 d^2), proj_mlp (d m) and proj_out ((d + m) d). Attention:
  // q k^T and p v, 2 s^2 d multiply-adds.
  const double per_double = 2 * s * (4 * d * d + 2 * d * m) + 4 * s * s * d;
  const double per_single = 2 * s * (3 * d * d + d * m + (d + m) * d) + 4 * s * s * d;
  const double embed = 2 * n * static_cast<double>(c.in_channels) * d +
                       2 * l * static_cast<double>(c.joint_attention_dim) * d +
                       2 * n * d * static_cast<double>(c.out_channels);
  return c.num_layers * per_double + c.num_single_layers * per_single + embed;
}

std::vector<FluxPosition> flux_image_ids(int64_t rows, int64_t cols) {
  std::vector<FluxPosition> ids;
  ids.reserve(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      ids.push_back({0.0f, static_cast<float>(r), static_cast<float>(c)});
  return ids;
}

Tensor flux_pack_latents(const Tensor& latents) {
  ZF_CHECK(latents.ndim() == 4 && latents.size(2) % 2 == 0 && latents.size(3) % 2 == 0,
           "[flux] pack: latents {} must be [B, C, H, W] with even H and W",
           shape_str(latents.shape()));
  const int64_t b = latents.size(0), c = latents.size(1), h = latents.size(2) / 2,
                w = latents.size(3) / 2;
  // view(B, C, h, 2, w, 2).permute(0, 2, 4, 1, 3, 5) -> [B, h, w, C, 2, 2]
  return latents.contiguous()
      .view({b, c, h, 2, w, 2})
      .permute({0, 2, 4, 1, 3, 5})
      .contiguous()
      .view({b, h * w, c * 4});
}

Tensor flux_unpack_latents(const Tensor& tokens, int64_t height, int64_t width) {
  ZF_CHECK(tokens.ndim() == 3 && height % 2 == 0 && width % 2 == 0 &&
               tokens.size(1) == (height / 2) * (width / 2) && tokens.size(2) % 4 == 0,
           "[flux] unpack: tokens {} do not hold a {}x{} latent", shape_str(tokens.shape()), height,
           width);
  const int64_t b = tokens.size(0), c = tokens.size(2) / 4;
  // view(B, h, w, C, 2, 2).permute(0, 3, 1, 4, 2, 5) -> [B, C, h, 2, w, 2]
  return tokens.contiguous()
      .view({b, height / 2, width / 2, c, 2, 2})
      .permute({0, 3, 1, 4, 2, 5})
      .contiguous()
      .view({b, c, height, width});
}

FluxTransformer::FluxTransformer(const FluxDiTConfig& config, const io::WeightStore& weights,
                                 const Placement& placement)
    : config_(validated(config, weights.description())), placement_(placement) {
  std::vector<ParameterSpec> used;
  Parts p =
      bind_placed(weights, placement_, config_.summary(),
                  flux_block_prefixes(config_.num_layers, config_.num_single_layers), "flux",
                  offload_, used, [&](ParameterBinder& bind) { return bind_all(bind, config_); });
  x_embedder_ = p.x_embedder;
  context_embedder_ = p.context_embedder;
  norm_out_ = p.norm_out;
  proj_out_ = p.proj_out;
  time_embedder_ = p.time_embedder;
  guidance_embedder_ = p.guidance_embedder;
  text_embedder_ = p.text_embedder;
  double_blocks_ = std::move(p.double_blocks);
  single_blocks_ = std::move(p.single_blocks);
  if (used.size() != weights.size())
    log::warn("[flux] {}: {} of its {} tensors are not part of the model ({})",
              weights.description(), weights.size() - used.size(), weights.size(),
              config_.summary());
}

// CombinedTimestep(Guidance)TextProjEmbeddings: timestep_embedder(sinusoid(t * 1000))
// [+ guidance_embedder(sinusoid(g * 1000))] + text_embedder(pooled), each an MLP with SiLU.
Tensor FluxTransformer::conditioning(const Tensor& pooled, std::span<const float> t,
                                     std::span<const float> guidance) const {
  auto scaled = [](std::span<const float> v) {
    std::vector<float> s(v.begin(), v.end());
    for (float& x : s) x *= kTimeScale;
    return s;
  };
  auto features = [&](std::span<const float> v) {
    return placement_.activation(timestep_features(scaled(v), kTimestepFeatures));
  };
  Tensor vec = silu_mlp(time_embedder_, features(t));
  if (config_.guidance_embeds)
    vec = ops::add(vec, silu_mlp(guidance_embedder_, features(guidance)));
  return ops::add(vec, silu_mlp(text_embedder_, pooled));
}

// A projection [B, L, inner] as heads [B, L, H, hd], with the per-head QK RMSNorm when `norm` is
// given.
Tensor FluxTransformer::heads(const Tensor& projected, const Tensor& norm) const {
  const Tensor y = projected.view({projected.size(0), projected.size(1),
                                   config_.num_attention_heads, config_.attention_head_dim});
  return norm.defined() ? ops::rms_norm(y, norm, kNormEps) : y;
}

// RoPE on q and k [B, S, H, hd], then unmasked SDPA with scale 1/sqrt(hd): [B, S, inner].
Tensor FluxTransformer::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                               const RopeTables& rope) const {
  const int64_t b = q.size(0), s = q.size(1), hd = config_.attention_head_dim;
  auto rotate = [&](const Tensor& x) {
    return ops::rope(x, rope.cos, rope.sin, ops::RopeLayout::kInterleaved).permute({0, 2, 1, 3});
  };
  const Tensor o = ops::attention(rotate(q), rotate(k), v.permute({0, 2, 1, 3}),
                                  1.0f / std::sqrt(static_cast<float>(hd)));
  return o.permute({0, 2, 1, 3}).contiguous().view({b, s, config_.inner_dim()});
}

// FluxTransformerBlock: both streams are modulated by their own adaLN-Zero
// (shift, scale, gate) x 2, attend jointly over [text ; image], and update with gated residuals:
//   x += gate1 * out(attn(LN(x) * (1 + scale1) + shift1))
//   x += gate2 * MLP(LN(x) * (1 + scale2) + shift2),   MLP = Linear -> GELU(tanh) -> Linear
void FluxTransformer::double_block(const DoubleBlock& blk, Tensor& img, Tensor& txt,
                                   const Tensor& vec, const RopeTables& rope) const {
  const int64_t d = config_.inner_dim(), l = txt.size(1);
  const Tensor mod_img = apply(blk.img.modulation, vec), mod_txt = apply(blk.txt.modulation, vec);
  const Tensor ni =
      ops::layer_norm_modulate(img, kNormEps, chunk(mod_img, 0, d), chunk(mod_img, 1, d));
  const Tensor nt =
      ops::layer_norm_modulate(txt, kNormEps, chunk(mod_txt, 0, d), chunk(mod_txt, 1, d));
  const std::vector<Tensor> t = apply_all({blk.txt.q, blk.txt.k, blk.txt.v}, nt);
  const std::vector<Tensor> i = apply_all({blk.img.q, blk.img.k, blk.img.v}, ni);
  const Tensor o =
      attend(ops::concat({heads(t[0], blk.txt.norm_q), heads(i[0], blk.img.norm_q)}, 1),
             ops::concat({heads(t[1], blk.txt.norm_k), heads(i[1], blk.img.norm_k)}, 1),
             ops::concat({heads(t[2], {}), heads(i[2], {})}, 1), rope);
  auto update = [&](const Stream& s, Tensor& x, const Tensor& mod, const Tensor& attn) {
    x = ops::add_gated(x, chunk(mod, 2, d), apply(s.out, attn));
    const Tensor n = ops::layer_norm_modulate(x, kNormEps, chunk(mod, 3, d), chunk(mod, 4, d));
    x = ops::add_gated(x, chunk(mod, 5, d), gelu_mlp(s.mlp, n));
  };
  update(blk.img, img, mod_img, o.slice(1, l, o.size(1)));
  update(blk.txt, txt, mod_txt, o.slice(1, 0, l));
}

// FluxSingleTransformerBlock on the joint sequence x[B, S, inner], attention and MLP in
// parallel: n = LN(x) * (1 + scale) + shift;
//   x += gate * proj_out(cat(attn(n), GELU_tanh(proj_mlp(n))))
void FluxTransformer::single_block(const SingleBlock& blk, Tensor& x, const Tensor& vec,
                                   const RopeTables& rope) const {
  const int64_t d = config_.inner_dim();
  const Tensor mod = apply(blk.modulation, vec);
  const Tensor n = ops::layer_norm_modulate(x, kNormEps, chunk(mod, 0, d), chunk(mod, 1, d));
  const std::vector<Tensor> p = apply_all({blk.q, blk.k, blk.v, blk.proj_mlp}, n);
  const Tensor mlp = ops::gelu(p[3], ops::GeluKind::kTanh);
  const Tensor attn =
      attend(heads(p[0], blk.norm_q), heads(p[1], blk.norm_k), heads(p[2], {}), rope);
  x = ops::add_gated(x, chunk(mod, 2, d), apply(blk.proj_out, ops::concat({attn, mlp}, 2)));
}

FluxTransformer::Trunk FluxTransformer::run(const Tensor& x, std::span<const FluxPosition> img_ids,
                                            const Tensor& txt_in, const Tensor& pooled_in,
                                            std::span<const float> t,
                                            std::span<const float> guidance,
                                            const Tensor& image_addend, const Tensor& text_prefix,
                                            const AfterBlock& after_block,
                                            FirstBlockCache* cache) const {
  const FluxDiTConfig& c = config_;
  auto is_activation = [](DType d) { return d == DType::F32 || d == DType::BF16; };
  ZF_CHECK(x.ndim() == 3 && x.size(0) >= 1 && x.size(1) >= 1 && x.size(2) == c.in_channels &&
               is_activation(x.dtype()),
           "[flux] forward: image tokens {} {}, expected F32 or BF16 [B, N, {}]",
           shape_str(x.shape()), dtype_name(x.dtype()), c.in_channels);
  const int64_t batch = x.size(0), n = x.size(1);
  ZF_CHECK(static_cast<int64_t>(img_ids.size()) == n, "[flux] forward: {} image ids for {} tokens",
           img_ids.size(), n);
  ZF_CHECK(txt_in.ndim() == 3 && txt_in.size(0) == batch && txt_in.size(1) >= 1 &&
               txt_in.size(2) == c.joint_attention_dim && is_activation(txt_in.dtype()),
           "[flux] forward: text states {} {}, expected F32 or BF16 [{}, L, {}]",
           shape_str(txt_in.shape()), dtype_name(txt_in.dtype()), batch, c.joint_attention_dim);
  ZF_CHECK(pooled_in.ndim() == 2 && pooled_in.size(0) == batch &&
               pooled_in.size(1) == c.pooled_projection_dim && is_activation(pooled_in.dtype()),
           "[flux] forward: pooled text {} {}, expected F32 or BF16 [{}, {}]",
           shape_str(pooled_in.shape()), dtype_name(pooled_in.dtype()), batch,
           c.pooled_projection_dim);
  ZF_CHECK(static_cast<int64_t>(t.size()) == batch, "[flux] forward: {} timesteps for {} samples",
           t.size(), batch);
  ZF_CHECK(static_cast<int64_t>(guidance.size()) == (c.guidance_embeds ? batch : 0),
           "[flux] forward: {} guidance values for {} samples; the model {} a guidance embedder",
           guidance.size(), batch, c.guidance_embeds ? "has" : "has no");
  const int64_t d = c.inner_dim();
  ZF_CHECK(!image_addend.defined() || (image_addend.shape() == Shape{batch, n, d}),
           "[flux] forward: image addend {}, expected [{}, {}, {}]",
           shape_str(image_addend.shape()), batch, n, d);
  ZF_CHECK(!text_prefix.defined() || (text_prefix.ndim() == 3 && text_prefix.size(0) == batch &&
                                      text_prefix.size(2) == d),
           "[flux] forward: text prefix {}, expected [{}, P, {}]", shape_str(text_prefix.shape()),
           batch, d);

  // Every input goes to the placement once.
  const Placement& at = placement_;
  const Tensor txt = at.activation(txt_in), pooled = at.activation(pooled_in);

  // 1. The conditioning vector; every modulation reads SiLU of it.
  const Tensor vec = ops::silu(conditioning(pooled, t, guidance));

  // 2. Embed; a ControlNet adds its control to the image tokens and may put a token first.
  Tensor img = apply(x_embedder_, at.activation(x));
  if (image_addend.defined()) img = ops::add(img, image_addend);
  Tensor ctx = apply(context_embedder_, txt);
  if (text_prefix.defined()) ctx = ops::concat({text_prefix, ctx}, 1);

  // 3. RoPE over [text ids (all 0) ; image ids].
  const int64_t l = ctx.size(1), s = l + n;
  std::vector<float> positions(static_cast<size_t>(l) * 3, 0.0f);
  for (const FluxPosition& p : img_ids) positions.insert(positions.end(), p.begin(), p.end());
  const RopeTables rope = flux_rope_tables(positions, c.axes_dims_rope, c.rope_theta, at.device);

  // 4. The double-stream blocks, then the single-stream blocks on [text ; image].
  const std::unique_lock<std::mutex> streaming = lock_blocks(offload_.get());
  for (size_t i = 0; i < double_blocks_.size(); ++i) {
    std::optional<BlockLease> lease;
    const Tensor input = img;
    double_block(block_to_run(offload_.get(), lease, i, double_blocks_[i],
                              [&](ParameterBinder& bind) {
                                return bind_double(bind, double_block_name(i), c);
                              }),
                 img, ctx, vec, rope);
    if (after_block)
      if (Tensor changed = after_block(false, i, img); changed.defined()) img = std::move(changed);
    // Every later block skipped: the text stream is not read again.
    if (cache && i == 0 && !cache->first_block_done(input, img))
      return {ops::concat({ctx, cache->last_block_done({})}, 1), l, vec};
  }
  Tensor joint = ops::concat({ctx, img}, 1);
  for (size_t i = 0; i < single_blocks_.size(); ++i) {
    std::optional<BlockLease> lease;
    single_block(block_to_run(offload_.get(), lease, double_blocks_.size() + i, single_blocks_[i],
                              [&](ParameterBinder& bind) {
                                return bind_single(bind, single_block_name(i), c);
                              }),
                 joint, vec, rope);
    if (after_block)
      if (Tensor changed = after_block(true, i, joint.slice(1, l, s)); changed.defined())
        joint = ops::concat({joint.slice(1, 0, l), changed}, 1);
  }
  if (cache)
    joint = ops::concat({joint.slice(1, 0, l), cache->last_block_done(joint.slice(1, l, s))}, 1);
  return {std::move(joint), l, vec};
}

namespace {

// The sample a ControlNet gives block `i` of `blocks` (diffusers' interval_control).
const Tensor& control_sample(const std::vector<Tensor>& samples, size_t i, size_t blocks,
                             bool repeat) {
  const size_t n = samples.size();
  return samples[repeat ? i % n : i / ((blocks + n - 1) / n)];
}

}  // namespace

Tensor FluxTransformer::forward(const Tensor& x, std::span<const FluxPosition> img_ids,
                                const Tensor& txt, const Tensor& pooled, std::span<const float> t,
                                std::span<const float> guidance, const ControlSamples* control,
                                FirstBlockCache* cache) const {
  ZF_CHECK(config_.final_layer,
           "[flux] forward: a ControlNet's trunk has no final layer (use block_outputs)");
  ZF_CHECK(!cache || (!control && !double_blocks_.empty() &&
                      double_blocks_.size() + single_blocks_.size() >= 2),
           "[flux] first-block cache: {}",
           control ? "not with a ControlNet (its samples join the later blocks)"
                   : "the model has one block");
  AfterBlock add_control;
  if (control && (!control->double_blocks.empty() || !control->single_blocks.empty()))
    add_control = [&](bool single, size_t i, const Tensor& image) {
      const std::vector<Tensor>& samples = single ? control->single_blocks : control->double_blocks;
      if (samples.empty()) return Tensor();
      const size_t blocks = single ? single_blocks_.size() : double_blocks_.size();
      const Tensor& sample = control_sample(samples, i, blocks, control->repeat && !single);
      ZF_CHECK(sample.shape() == image.shape(),
               "[flux] forward: ControlNet sample {} for image tokens {}",
               shape_str(sample.shape()), shape_str(image.shape()));
      return ops::add(image, sample);
    };
  const Trunk trunk = run(x, img_ids, txt, pooled, t, guidance, {}, {}, add_control, cache);

  // 5. AdaLayerNormContinuous on the image tokens ((scale, shift) in diffusers' order), then the
  //    projection to the packed latent channels; float32 where x was.
  const int64_t d = config_.inner_dim(), l = trunk.text_tokens;
  const Tensor mod = apply(norm_out_, trunk.vec);
  const Tensor out = ops::layer_norm_modulate(trunk.joint.slice(1, l, trunk.joint.size(1)),
                                              kNormEps, chunk(mod, 1, d), chunk(mod, 0, d));
  return float32_on(apply(proj_out_, out), x.device());
}

std::vector<Tensor> FluxTransformer::block_outputs(
    const Tensor& x, std::span<const FluxPosition> img_ids, const Tensor& txt, const Tensor& pooled,
    std::span<const float> t, std::span<const float> guidance, const Tensor& image_addend,
    const Tensor& text_prefix) const {
  std::vector<Tensor> outputs;
  run(x, img_ids, txt, pooled, t, guidance, image_addend, text_prefix,
      [&](bool, size_t, const Tensor& image) {
        outputs.push_back(image);
        return Tensor();
      });
  return outputs;
}

FluxTransformer load_flux_transformer(const io::WeightStore& weights,
                                      const std::optional<FluxDiTConfig>& config,
                                      const Placement& placement, std::span<const LoraFile> loras) {
  const io::WeightStore own = io::flux_transformer_weights(weights);
  ZF_CHECK(io::detect_flux_generation(own) == io::FluxGeneration::Flux1,
           "[flux] {}: a FLUX.2 transformer, not FLUX.1 (it has the shared "
           "'double_stream_modulation_img' weights)",
           weights.description());
  const io::FluxLayout layout = io::detect_flux_layout(own);
  const io::WeightStore named = merge_loras(
      layout == io::FluxLayout::Original ? io::original_flux_to_diffusers(own) : own, loras,
      io::flux_row_mappings(io::FluxGeneration::Flux1, io::count_flux_blocks(own)),
      "FLUX.1 transformer");
  if (!config) return FluxTransformer(FluxDiTConfig::infer_from_weights(named), named, placement);
  const bool has_guidance = io::flux_has_guidance(named);
  if (config->guidance_embeds != has_guidance)
    fail(
        "[flux] {}: the config says guidance_embeds {} but the weights {} a guidance embedder "
        "(FLUX.1-dev has one, schnell has none)",
        weights.description(), config->guidance_embeds, has_guidance ? "have" : "have no");
  // A LoRA may widen the input (BFL's Canny / Depth LoRAs turn dev into Canny / Depth-dev).
  FluxDiTConfig c = *config;
  if (!loras.empty() && named.contains("x_embedder.weight"))
    c.in_channels = named.get("x_embedder.weight").size(1);
  log::info("[flux] {}: {} layout, {}", weights.description(), io::flux_layout_name(layout),
            c.summary());
  return FluxTransformer(c, named, placement);
}

FluxTransformer load_flux_transformer(const std::filesystem::path& path,
                                      const std::optional<FluxDiTConfig>& config,
                                      io::LoadQuantization quantize, const Placement& placement,
                                      std::span<const LoraFile> loras) {
  // A model folder (model_index.json, transformer/, vae/, ...) holds the transformer below.
  const std::filesystem::path where = io::component_folder(path, "transformer");
  const io::WeightStore weights =
      io::quantize_at_load(io::WeightStore::open(where), quantize, placement.device);
  // The first step would otherwise fault the mapped weights in from disk between its matmuls.
  if (placement.device == Device::CPU) io::read_ahead_in_background(weights, "flux");
  if (config) return load_flux_transformer(weights, config, placement, loras);
  if (const auto json = io::component_config_json(where))
    return load_flux_transformer(weights, FluxDiTConfig::from_json_file(*json), placement, loras);
  return load_flux_transformer(weights, std::nullopt, placement, loras);
}

}  // namespace zflow::models
