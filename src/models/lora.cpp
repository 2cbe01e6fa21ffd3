#include "models/lora.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "io/fp8_weights.h"
#include "io/int8_weights.h"

namespace zflow::models {
namespace {

// The spellings of a module's two matrices and its alpha, as the trainers write them.
constexpr std::string_view kDownSuffixes[] = {".lora_A.weight", ".lora_A.default.weight",
                                              ".lora_down.weight", ".lora.down.weight"};
constexpr std::string_view kUpSuffixes[] = {".lora_B.weight", ".lora_B.default.weight",
                                            ".lora_up.weight", ".lora.up.weight"};
// PEFT's lora_bias: the up projection's bias, added to the module's bias.
constexpr std::string_view kUpBiasSuffixes[] = {".lora_B.bias", ".lora_B.default.bias"};
constexpr std::string_view kAlphaSuffix = ".alpha";
// LyCORIS's LoKr and LoHa tensors (its own and kohya's naming; ComfyUI reads them alike).
constexpr std::string_view kLyCorisSuffixes[] = {
    ".lokr_w1",   ".lokr_w1_a", ".lokr_w1_b", ".lokr_w2",   ".lokr_w2_a",
    ".lokr_w2_b", ".hada_w1_a", ".hada_w1_b", ".hada_w2_a", ".hada_w2_b"};

// What stands before the module path, outermost first (PEFT's wrapper, diffusers' component,
// ComfyUI's and kohya's model prefixes).
constexpr std::string_view kPrefixes[] = {"base_model.model.", "transformer.",
                                          "model.diffusion_model.", "diffusion_model.",
                                          "lora_unet_"};

// Modules of the text encoders, which these files may carry too.
constexpr std::string_view kTextEncoderPrefixes[] = {"lora_te", "text_encoder", "te1.", "te2.",
                                                     "text_encoders."};

// Module paths compare with dots and underscores alike: kohya writes
// `lora_unet_double_blocks_0_img_attn_qkv` for `double_blocks.0.img_attn.qkv`.
std::string match_key(std::string_view module) {
  std::string key(module);
  std::replace(key.begin(), key.end(), '.', '_');
  return key;
}

std::string strip_prefixes(std::string_view name) {
  for (bool again = true; again;) {
    again = false;
    for (std::string_view p : kPrefixes)
      if (name.starts_with(p)) {
        name.remove_prefix(p.size());
        again = true;
      }
  }
  return std::string(name);
}

// A module of the model a LoRA may patch: the diffusers weights its update lands in, by rows,
// and their biases (when the module has them all).
struct Target {
  std::vector<std::string> parts;
  bool swap_halves = false;
  std::vector<std::string> bias_parts;
};

Target target_of(const io::WeightStore& weights, std::vector<std::string> parts, bool swap) {
  Target t{std::move(parts), swap, {}};
  for (const std::string& part : t.parts) {
    const std::string bias = part.substr(0, part.size() - 7) + ".bias";
    if (!weights.contains(bias)) return {t.parts, swap, {}};
    t.bias_parts.push_back(bias);
  }
  return t;
}

// Every 2-D weight under its diffusers name, then every original-layout name whose parts are
// all present.
std::map<std::string, Target> patchable_modules(const io::WeightStore& weights,
                                                std::span<const io::RowMapping> original) {
  std::map<std::string, Target> out;
  for (const std::string& name : weights.names())
    if (name.ends_with(".weight") && weights.get(name).ndim() == 2)
      out[match_key(std::string_view(name).substr(0, name.size() - 7))] =
          target_of(weights, {name}, false);
  for (const io::RowMapping& m : original) {
    const bool present = std::all_of(m.parts.begin(), m.parts.end(), [&](const std::string& p) {
      return weights.contains(p) && weights.get(p).ndim() == 2;
    });
    if (present && m.original.ends_with(".weight"))
      out.emplace(match_key(std::string_view(m.original).substr(0, m.original.size() - 7)),
                  target_of(weights, m.parts, m.swap_halves));
  }
  return out;
}

// The norm scales a LoRA may replace outright (BFL's Canny / Depth LoRAs carry new QK-norm
// scales; diffusers' _load_norm_into_transformer): every 1-D norm weight by its diffusers name
// and by its original one.
std::map<std::string, std::string> replaceable_norms(const io::WeightStore& weights,
                                                     std::span<const io::RowMapping> original) {
  std::map<std::string, std::string> out;
  auto is_norm = [&](const std::string& name) {
    return name.find("norm") != std::string::npos && weights.contains(name) &&
           weights.get(name).ndim() == 1;
  };
  for (const std::string& name : weights.names())
    if (is_norm(name)) out[match_key(name)] = name;
  for (const io::RowMapping& m : original)
    if (m.parts.size() == 1 && !m.swap_halves && is_norm(m.parts.front()))
      out.emplace(match_key(m.original), m.parts.front());
  return out;
}

// One module's tensors in a LoRA file, by their names in the file ("" when absent): a LoRA's
// down and up matrices (and PEFT's up bias), or LyCORIS's LoKr / LoHa tensors by suffix.
struct Module {
  std::string down, up, up_bias, alpha;
  std::map<std::string, std::string, std::less<>> lycoris;  // "lokr_w1" -> tensor name

  bool is_lokr() const { return lycoris.contains("lokr_w1") || lycoris.contains("lokr_w1_a"); }
  bool is_loha() const { return lycoris.contains("hada_w1_a"); }
  // A LyCORIS tensor of this module; an Error naming the module when it is missing.
  Tensor get(const io::WeightStore& file, std::string_view suffix,
             const std::string& module) const {
    const auto it = lycoris.find(suffix);
    ZF_CHECK(it != lycoris.end(), "[lora] {}: module '{}' has no '{}'", file.description(), module,
             suffix);
    return file.get(it->second);
  }
};

// One module of one file, to be added to its target: scale * its weight update (LoRA up @ down,
// LoKr kron(w1, w2), LoHa (w1a @ w1b) * (w2a @ w2b)) to its weights, or scale * the up bias to
// its biases.
struct Update {
  const Target* target;
  const io::WeightStore* store;  // the file's tensors
  const Module* module;
  std::string name;  // the module's name in the file
  bool bias;         // the up bias, not the weight
  float scale;

  const std::vector<std::string>& parts() const {
    return bias ? target->bias_parts : target->parts;
  }
};

// A tensor of the model a file replaces outright.
struct Replacement {
  std::string target;
  const io::WeightStore* store;
  std::string name;
};

std::optional<std::string> strip_suffix(const std::string& name,
                                        std::span<const std::string_view> suffixes) {
  for (std::string_view s : suffixes)
    if (name.ends_with(s)) return name.substr(0, name.size() - s.size());
  return std::nullopt;
}

// The file's modules by their name in the file (prefix included), and the tensors it holds that
// are none of a module's down, up or alpha.
std::map<std::string, Module> modules_of(const io::WeightStore& file,
                                         std::vector<std::string>& other) {
  std::map<std::string, Module> out;
  for (const std::string& name : file.names()) {
    if (auto m = strip_suffix(name, kLyCorisSuffixes)) {
      out[*m].lycoris[name.substr(m->size() + 1)] = name;
    } else if (auto m = strip_suffix(name, kDownSuffixes)) {
      out[*m].down = name;
    } else if (auto m = strip_suffix(name, kUpSuffixes)) {
      out[*m].up = name;
    } else if (auto m = strip_suffix(name, kUpBiasSuffixes)) {
      out[*m].up_bias = name;
    } else if (name.ends_with(kAlphaSuffix)) {
      out[name.substr(0, name.size() - kAlphaSuffix.size())].alpha = name;
    } else {
      other.push_back(name);
    }
  }
  return out;
}

// The update a module makes: [rows, cols], and the rank its alpha is divided by (0: alpha is not
// applied, as for a LoKr with both halves whole). Checks the module's tensors fit together.
struct UpdateShape {
  int64_t rows = 0, cols = 0, rank = 0;
};

// A LoKr half: `lokr_wN` whole, or `lokr_wN_a @ lokr_wN_b` (rank: their inner size).
UpdateShape lokr_half(const io::WeightStore& file, const Module& m, const std::string& name,
                      const std::string& half) {
  if (m.lycoris.contains(half)) {
    const Tensor w = m.get(file, half, name);
    ZF_CHECK(w.ndim() == 2, "[lora] {}: '{}.{}' has shape {}, expected a matrix",
             file.description(), name, half, shape_str(w.shape()));
    return {w.size(0), w.size(1), 0};
  }
  const Tensor a = m.get(file, half + "_a", name), b = m.get(file, half + "_b", name);
  ZF_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.size(1) == b.size(0),
           "[lora] {}: module '{}' has {}_a {} and {}_b {}, which do not multiply (a Tucker "
           "factorisation is not supported)",
           file.description(), name, half, shape_str(a.shape()), half, shape_str(b.shape()));
  return {a.size(0), b.size(1), a.size(1)};
}

UpdateShape update_shape(const io::WeightStore& file, const Module& m, const std::string& name) {
  const std::string& source = file.description();
  if (m.is_lokr()) {  // kron(w1, w2); rank from the first factorised half (LyCORIS's rule)
    const UpdateShape w1 = lokr_half(file, m, name, "lokr_w1");
    const UpdateShape w2 = lokr_half(file, m, name, "lokr_w2");
    return {w1.rows * w2.rows, w1.cols * w2.cols, w1.rank > 0 ? w1.rank : w2.rank};
  }
  if (m.is_loha()) {  // (w1a @ w1b) * (w2a @ w2b)
    const Tensor a1 = m.get(file, "hada_w1_a", name), b1 = m.get(file, "hada_w1_b", name);
    const Tensor a2 = m.get(file, "hada_w2_a", name), b2 = m.get(file, "hada_w2_b", name);
    ZF_CHECK(a1.ndim() == 2 && b1.ndim() == 2 && a1.size(1) == b1.size(0) &&
                 a2.shape() == a1.shape() && b2.shape() == b1.shape(),
             "[lora] {}: LoHa module '{}' has w1 {} @ {} and w2 {} @ {}, expected two equal "
             "products (a Tucker factorisation is not supported)",
             source, name, shape_str(a1.shape()), shape_str(b1.shape()), shape_str(a2.shape()),
             shape_str(b2.shape()));
    return {a1.size(0), b1.size(1), b1.size(0)};
  }
  ZF_CHECK(m.lycoris.empty(), "[lora] {}: module '{}' has '{}' without a LoKr w1 or LoHa w1",
           source, name, m.lycoris.begin()->second);
  ZF_CHECK(!m.down.empty() && !m.up.empty(), "[lora] {}: module '{}' has no {} matrix", source,
           name, m.down.empty() ? "down (lora_A / lora_down)" : "up (lora_B / lora_up)");
  const Tensor down = file.get(m.down), up = file.get(m.up);
  ZF_CHECK(down.ndim() == 2 && up.ndim() == 2 && up.size(1) == down.size(0),
           "[lora] {}: module '{}' has down {} and up {}, which do not multiply", source, name,
           shape_str(down.shape()), shape_str(up.shape()));
  return {up.size(0), down.size(1), down.size(0)};
}

Tensor f32_matrix(const Tensor& t) {
  return t.to(DType::F32).contiguous();
}

// kron(a, b)[i * rb + k, j * cb + l] = a[i, j] * b[k, l].
Tensor kronecker(const Tensor& a, const Tensor& b) {
  const int64_t ra = a.size(0), ca = a.size(1), rb = b.size(0), cb = b.size(1);
  Tensor out = Tensor::empty({ra * rb, ca * cb}, DType::F32);
  const float *x = a.data<float>(), *y = b.data<float>();
  float* o = out.data<float>();
  for (int64_t i = 0; i < ra; ++i)
    for (int64_t k = 0; k < rb; ++k)
      for (int64_t j = 0; j < ca; ++j)
        for (int64_t l = 0; l < cb; ++l)
          o[(i * rb + k) * ca * cb + j * cb + l] = x[i * ca + j] * y[k * cb + l];
  return out;
}

// The module's weight update at strength 1 before its alpha scale, float32 [rows, cols].
Tensor weight_update(const io::WeightStore& file, const Module& m, const std::string& name) {
  auto product = [&](const std::string& a, const std::string& b) {
    return ops::matmul(f32_matrix(m.get(file, a, name)), f32_matrix(m.get(file, b, name)));
  };
  if (m.is_lokr()) {
    auto half = [&](const std::string& h) {
      return m.lycoris.contains(h) ? f32_matrix(m.get(file, h, name)) : product(h + "_a", h + "_b");
    };
    return kronecker(half("lokr_w1"), half("lokr_w2"));
  }
  if (m.is_loha()) {
    Tensor w = product("hada_w1_a", "hada_w1_b");
    const Tensor w2 = product("hada_w2_a", "hada_w2_b");
    float* p = w.data<float>();
    const float* q = w2.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) p[i] *= q[i];
    return w;
  }
  return ops::matmul(f32_matrix(file.get(m.up)), f32_matrix(file.get(m.down)));
}

bool is_text_encoder_module(std::string_view module) {
  return std::any_of(std::begin(kTextEncoderPrefixes), std::end(kTextEncoderPrefixes),
                     [&](std::string_view p) { return module.starts_with(p); });
}

// A float32 copy of the weight `name` of `weights` (never the mapped file itself, which a float32
// weight's to(F32) would return), made once and then accumulated into. A matrix updated with
// more columns than it has (`cols`: the Canny / Depth LoRAs widen x_embedder's input) is
// zero-padded on the right first, as diffusers widens the layer.
Tensor& accumulator(std::map<std::string, Tensor>& merged, const io::WeightStore& weights,
                    const std::string& name, int64_t cols) {
  auto it = merged.find(name);
  if (it == merged.end()) {
    const Tensor w = weights.get(name);
    Tensor copy;
    if (w.ndim() == 2 && cols > w.size(1)) {
      const Tensor narrow = w.to(DType::F32).contiguous();
      copy = Tensor::zeros({w.size(0), cols}, DType::F32);
      for (int64_t r = 0; r < w.size(0); ++r)
        std::memcpy(copy.data<float>() + r * cols, narrow.data<float>() + r * w.size(1),
                    static_cast<size_t>(w.size(1)) * sizeof(float));
    } else {
      copy = Tensor::empty(w.shape(), DType::F32);
      copy.copy_from(w);
    }
    it = merged.emplace(name, copy).first;
  }
  return it->second;
}

// dst += scale * src, elementwise over [rows, cols] (both contiguous float32 rows).
void add_scaled(float* dst, const float* src, int64_t n, float scale) {
  constexpr int64_t kChunk = int64_t{1} << 16;
  parallel_for((n + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin * kChunk; i < std::min(n, end * kChunk); ++i) dst[i] += scale * src[i];
  });
}

// Adds one update [rows, cols] (a bias update: [rows, 1]) to the accumulators of its parts.
void merge_update(const io::WeightStore& weights, const Update& u, const Tensor& delta,
                  std::map<std::string, Tensor>& merged) {
  const int64_t cols = delta.size(1);
  const float* d = delta.data<float>();
  const float scale = u.scale;
  int64_t row = 0;
  for (const std::string& part : u.parts()) {
    Tensor& acc = accumulator(merged, weights, part, cols);
    const int64_t rows = acc.size(0);
    if (u.target->swap_halves) {  // the update's first half is the weight's second, and back
      const int64_t half = rows / 2;
      add_scaled(acc.data<float>() + half * cols, d, half * cols, scale);
      add_scaled(acc.data<float>(), d + half * cols, (rows - half) * cols, scale);
    } else {
      add_scaled(acc.data<float>(), d + row * cols, rows * cols, scale);
    }
    row += rows;
  }
}

// The merged weight in the dtype the model had it in (see lora.h).
Tensor stored_like(const Tensor& merged, const Tensor& original) {
  if (dtype_is_float8(original.dtype())) return io::quantize_fp8_e4m3(merged);
  if (!original.row_scales().empty()) {  // ComfyUI requantises with the layer's own settings
    const int64_t group = original.hadamard_group();
    return io::quantize_int8_rows(merged,
                                  merged.size(1) % std::max<int64_t>(group, 1) == 0 ? group : 0);
  }
  if (dtype_is_quantized(original.dtype()))
    return merged.to(can_quantize(original.dtype()) ? original.dtype() : DType::BF16);
  return merged.to(original.dtype());
}

}  // namespace

std::string LoraContents::summary() const {
  std::string s = fmt::format("{} modules, rank {}", modules,
                              min_rank == max_rank ? fmt::format("{}", max_rank)
                                                   : fmt::format("{}..{}", min_rank, max_rank));
  if (up_biases > 0) s += fmt::format(", {} up biases", up_biases);
  if (other_tensors > 0) s += fmt::format(", {} norm scales (replacements)", other_tensors);
  if (widened_input > 0)
    s += fmt::format(", widens the input to {} features (Canny / Depth)", widened_input);
  return s;
}

std::optional<LoraContents> inspect_lora(const io::WeightStore& file) {
  std::vector<std::string> other;
  const std::map<std::string, Module> modules = modules_of(file, other);
  LoraContents c;
  c.other_tensors = static_cast<int>(other.size());
  for (const auto& [name, m] : modules) {
    if (m.lycoris.empty() && (m.down.empty() || m.up.empty() || file.get(m.down).ndim() != 2))
      continue;
    const UpdateShape shape = update_shape(file, m, name);
    if (shape.rank > 0) {
      c.min_rank = c.min_rank == 0 ? shape.rank : std::min(c.min_rank, shape.rank);
      c.max_rank = std::max(c.max_rank, shape.rank);
    }
    ++c.modules;
    if (!m.up_bias.empty()) ++c.up_biases;
    if (c.naming.empty())
      c.naming = m.is_lokr()                             ? "LyCORIS LoKr"
                 : m.is_loha()                           ? "LyCORIS LoHa"
                 : m.down.ends_with(".lora_down.weight") ? "kohya"
                 : m.down.ends_with(".lora.down.weight") ? "dotted"
                                                         : "PEFT / diffusers";
    const std::string module = match_key(strip_prefixes(name));
    if (c.model.empty()) {
      if (module.find("double_blocks") != std::string::npos ||
          module.find("transformer_blocks") != std::string::npos)
        c.model = "FLUX";
      else if (module.starts_with("layers_") || module.find("noise_refiner") != std::string::npos)
        c.model = "Z-Image";
    }
    // FLUX.1's packed latents have 64 features; a Canny / Depth LoRA gives it 128.
    if ((module == "img_in" || module == "x_embedder") && m.lycoris.empty() && shape.cols > 64)
      c.widened_input = shape.cols;
  }
  if (c.modules == 0) return std::nullopt;
  // FLUX.2 reads 128 features itself: only a LoRA that also replaces norm scales is BFL's
  // Canny / Depth kind.
  if (c.other_tensors == 0) c.widened_input = 0;
  return c;
}

LoraFile parse_lora_argument(const std::string& argument) {
  const size_t colon = argument.rfind(':');
  if (colon == std::string::npos || colon == 0) return {argument, 1.0f};
  const std::string number = argument.substr(colon + 1);
  char* end = nullptr;
  errno = 0;
  const float scale = std::strtof(number.c_str(), &end);
  // A colon not followed by a number belongs to the path.
  if (number.empty() || end != number.c_str() + number.size()) return {argument, 1.0f};
  ZF_CHECK(errno == 0 && std::isfinite(scale),
           "[lora] --lora {}: the scale '{}' is not a finite number", argument, number);
  return {argument.substr(0, colon), scale};
}

io::WeightStore merge_loras(const io::WeightStore& weights, std::span<const LoraFile> loras,
                            std::span<const io::RowMapping> original, std::string_view what) {
  if (loras.empty()) return weights;
  const std::map<std::string, Target> targets = patchable_modules(weights, original);
  const std::map<std::string, std::string> norms = replaceable_norms(weights, original);
  // 1. Every file's modules, checked and matched to the weights they patch (nothing computed).
  std::vector<io::WeightStore> stores;
  std::vector<std::map<std::string, Module>> file_modules;
  stores.reserve(loras.size());  // the updates point into both
  file_modules.reserve(loras.size());
  std::vector<Update> updates;
  std::vector<Replacement> replacements;
  for (const LoraFile& lora : loras) {
    const std::string file = lora.path.string();
    stores.push_back(io::WeightStore::open(lora.path));
    const io::WeightStore& store = stores.back();
    std::vector<std::string> other;
    const std::map<std::string, Module>& modules =
        file_modules.emplace_back(modules_of(store, other));
    for (const std::string& name : other) {
      const auto norm = norms.find(match_key(strip_prefixes(name)));
      ZF_CHECK(norm != norms.end(),
               "[lora] {}: tensor '{}' is not a LoRA down, up, up bias or alpha, a LoKr or LoHa "
               "matrix, nor a norm scale of the {} (DoRA, Tucker-factorised LyCORIS and full "
               "'diff' patches are not supported)",
               file, name, what);
      const Shape want = weights.get(norm->second).shape();
      ZF_CHECK(store.get(name).shape() == want,
               "[lora] {}: norm scale '{}' has shape {}, but the {}'s '{}' is {}", file, name,
               shape_str(store.get(name).shape()), what, norm->second, shape_str(want));
      replacements.push_back({norm->second, &store, name});
    }
    int applied = 0, skipped = 0;
    std::vector<std::string> unknown;
    for (const auto& [name, module] : modules) {
      const std::string path = strip_prefixes(name);
      if (is_text_encoder_module(name) || is_text_encoder_module(path)) {
        ++skipped;
        continue;
      }
      const auto target = targets.find(match_key(path));
      if (target == targets.end()) {
        unknown.push_back(name);
        continue;
      }
      const Target& t = target->second;
      const UpdateShape shape = update_shape(store, module, name);
      const Tensor& first = weights.get(t.parts.front());
      int64_t out_rows = 0;
      for (const std::string& p : t.parts) out_rows += weights.get(p).size(0);
      // A single matrix may be widened by a LoRA (more input columns: BFL's Canny / Depth LoRAs
      // give x_embedder the control latents' features); a fused one may not.
      const bool widens = t.parts.size() == 1 && !t.swap_halves && module.lycoris.empty() &&
                          shape.cols > first.size(1);
      ZF_CHECK(shape.rows == out_rows && (shape.cols == first.size(1) || widens),
               "[lora] {}: module '{}' makes a [{}, {}] update, which does not fit '{}' [{}, {}]",
               file, name, shape.rows, shape.cols, t.parts.front(), out_rows, first.size(1));
      if (widens)
        log::info("[lora] {}: '{}' widens '{}' from {} to {} input features", file, name,
                  t.parts.front(), first.size(1), shape.cols);
      float scale = lora.scale;
      if (!module.alpha.empty() && shape.rank > 0) {
        const Tensor alpha = store.get(module.alpha);
        ZF_CHECK(alpha.numel() == 1, "[lora] {}: '{}' holds {} values, expected one", file,
                 module.alpha, alpha.numel());
        scale *= alpha.to_f32_vector()[0] / static_cast<float>(shape.rank);
      }
      updates.push_back({&t, &store, &module, name, false, scale});
      if (!module.up_bias.empty()) {
        const Tensor bias = store.get(module.up_bias);
        ZF_CHECK(!t.bias_parts.empty() && bias.ndim() == 1 && bias.size(0) == out_rows,
                 "[lora] {}: '{}' {} is no bias update of '{}' ({} rows{})", file, module.up_bias,
                 shape_str(bias.shape()), t.parts.front(), out_rows,
                 t.bias_parts.empty() ? ", and it has no bias" : "");
        updates.push_back({&t, &store, &module, name, true, scale});
      }
      ++applied;
    }
    ZF_CHECK(applied > 0, "[lora] {}: none of its {} modules is part of the {} (the first: '{}')",
             file, modules.size(), what, unknown.empty() ? "" : unknown.front());
    if (!unknown.empty())
      log::warn("[lora] {}: {} modules are not part of the {} and were left out (the first: '{}')",
                file, unknown.size(), what, unknown.front());
    if (skipped > 0)
      log::warn("[lora] {}: {} text-encoder modules left out (only the {} takes LoRAs)", file,
                skipped, what);
    log::info("[lora] {}: {} modules to merge into the {} at scale {}{}", file, applied, what,
              lora.scale,
              other.empty() ? "" : fmt::format(", {} norm scales to replace", other.size()));
  }

  // 2. The updates weight by weight: a float32 accumulator lives from a weight's first update to
  //    its last, then is stored back in the weight's dtype, so only a few weights are ever held
  //    in float32 (never the whole model).
  std::sort(updates.begin(), updates.end(),
            [](const Update& a, const Update& b) { return a.parts().front() < b.parts().front(); });
  std::map<std::string, int> pending;  // updates still to come, per weight
  for (const Update& u : updates)
    for (const std::string& part : u.parts()) ++pending[part];
  io::WeightStore out = weights;
  std::map<std::string, Tensor> merged;  // float32 accumulators of the weights being patched
  const auto t0 = std::chrono::steady_clock::now();
  for (const Update& u : updates) {
    Tensor delta;
    if (!u.bias) {
      delta = weight_update(*u.store, *u.module, u.name);
    } else {
      const Tensor bias = u.store->get(u.module->up_bias).to(DType::F32).contiguous();
      delta = bias.view({bias.size(0), 1});
    }
    merge_update(weights, u, delta, merged);
    for (const std::string& part : u.parts()) {
      if (--pending[part] > 0) continue;
      out.replace(part, stored_like(merged.at(part), weights.get(part)));
      merged.erase(part);
    }
  }
  // 3. Replaced norm scales, whatever the LoRA's scale (as diffusers loads them).
  for (const Replacement& r : replacements)
    out.replace(r.target, r.store->get(r.name).to(weights.get(r.target).dtype()));
  log::info("[lora] {} updates merged into {} weights of the {} in {:.1f} s", updates.size(),
            pending.size(), what,
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return out;
}

}  // namespace zflow::models
