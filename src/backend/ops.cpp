// Argument checks shared by every backend, then dispatch on the device of the inputs:
// backend/cpu/ kernels for host tensors, backend/cuda/ kernels for GPU tensors.
#include "backend/ops.h"

#include "backend/cpu/kernels.h"
#include "backend/dispatch.h"
#include "core/error.h"

namespace zflow::ops {
namespace {

using cpu::NormEpilogue;
using detail::common_device;
using detail::require_activation;
using detail::require_same_dtype;

bool is_weight_dtype(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16;
}

void require_rank(const char* op, const char* what, const Tensor& t, int rank) {
  ZF_CHECK(t.ndim() == rank, "[{}] {} must have {} dims, got {}", op, what, rank,
           shape_str(t.shape()));
}

// A weight-like tensor: stored float dtype, expected shape; returned contiguous.
Tensor weight(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  ZF_CHECK(is_weight_dtype(t.dtype()), "[{}] {} must be F32, BF16 or F16, got {}", op, what,
           dtype_name(t.dtype()));
  ZF_CHECK(t.shape() == expected, "[{}] {} has shape {}, expected {}", op, what,
           shape_str(t.shape()), shape_str(expected));
  return t.contiguous();
}

// A matrix weight that may also be in a GGML block type or (scaled) float8 (linear,
// embedding): kernels dequantise it as they read it.
Tensor matrix_weight(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  if (!dtype_is_quantized(t.dtype()) && !dtype_is_float8(t.dtype()) && t.row_scales().empty())
    return weight(op, what, t, expected);
  ZF_CHECK(t.shape() == expected, "[{}] {} has shape {}, expected {}", op, what,
           shape_str(t.shape()), shape_str(expected));
  ZF_CHECK(t.is_contiguous(), "[{}] a {} {} must be contiguous", op, dtype_name(t.dtype()), what);
  return t;
}

Tensor optional_vector(const char* op, const char* what, const Tensor& t, int64_t n) {
  return t.defined() ? weight(op, what, t, {n}) : Tensor{};
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  const Device dev = common_device("linear", {&x, &w, &b});
  require_activation("linear", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[linear] x must have at least 1 dim");
  ZF_CHECK(w.ndim() == 2, "[linear] w must be [N, K], got {}", shape_str(w.shape()));
  const int64_t n = w.size(0), k = x.size(-1);
  const Tensor wc = matrix_weight("linear", "w", w, {n, k});
  const Tensor bc = optional_vector("linear", "b", b, n);
  ZF_CHECK(dev == Device::CPU || w.row_scales().empty(),
           "[linear] an int8 weight with row scales runs on the CPU (placing a model on the GPU "
           "dequantises it)");
  ZF_DISPATCH_CUDA(dev, "linear", cuda::linear(x.contiguous(), wc, bc));
  return cpu::linear(x.contiguous(), wc, bc);
}

std::vector<Tensor> linears(const Tensor& x, const std::vector<Tensor>& ws,
                            const std::vector<Tensor>& bs) {
  ZF_CHECK(bs.empty() || bs.size() == ws.size(), "[linear] {} weights with {} biases", ws.size(),
           bs.size());
  const std::vector<Tensor> biases = bs.empty() ? std::vector<Tensor>(ws.size()) : bs;
  bool shared = !ws.empty() && x.device() == Device::CPU && x.ndim() >= 1;
  for (const Tensor& w : ws)
    shared = shared && w.device() == Device::CPU && w.ndim() == 2 && !w.row_scales().empty() &&
             w.size(1) == x.size(-1) && w.hadamard_group() == ws.front().hadamard_group();
  std::vector<Tensor> ys;
  if (!shared) {
    for (size_t i = 0; i < ws.size(); ++i) ys.push_back(linear(x, ws[i], biases[i]));
    return ys;
  }
  require_activation("linear", "x", x);
  std::vector<Tensor> weights, checked_biases;
  for (size_t i = 0; i < ws.size(); ++i) {
    weights.push_back(matrix_weight("linear", "w", ws[i], {ws[i].size(0), ws[i].size(1)}));
    checked_biases.push_back(optional_vector("linear", "b", biases[i], ws[i].size(0)));
    ZF_CHECK(!checked_biases.back().defined() || checked_biases.back().device() == Device::CPU,
             "[linear] the bias of a CPU int8 weight is on {}",
             device_name(checked_biases.back().device()));
  }
  return cpu::linear_int8_rows(x.contiguous(), weights, checked_biases);
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const Device dev = common_device("matmul", {&a, &b});
  require_activation("matmul", "a", a);
  ZF_CHECK(a.ndim() >= 2 && a.ndim() == b.ndim(),
           "[matmul] a and b need the same rank >= 2, got {} and {}", shape_str(a.shape()),
           shape_str(b.shape()));
  for (int d = 0; d < a.ndim() - 2; ++d)
    ZF_CHECK(a.size(d) == b.size(d), "[matmul] leading dims differ: {} and {}",
             shape_str(a.shape()), shape_str(b.shape()));
  ZF_CHECK(a.size(-1) == b.size(-2), "[matmul] inner dims differ: {} @ {}", shape_str(a.shape()),
           shape_str(b.shape()));
  ZF_CHECK(is_weight_dtype(b.dtype()), "[matmul] b must be F32, BF16 or F16, got {}",
           dtype_name(b.dtype()));
  ZF_DISPATCH_CUDA(dev, "matmul", cuda::matmul(a.contiguous(), b.contiguous()));
  return cpu::matmul(a.contiguous(), b.contiguous());
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding2d padding) {
  const Device dev = common_device("conv2d", {&x, &w, &b});
  require_activation("conv2d", "x", x);
  require_rank("conv2d", "x", x, 4);
  require_rank("conv2d", "w", w, 4);
  ZF_CHECK(stride >= 1, "[conv2d] stride must be >= 1, got {}", stride);
  ZF_CHECK(padding.top >= 0 && padding.bottom >= 0 && padding.left >= 0 && padding.right >= 0,
           "[conv2d] negative padding");
  const int64_t cout = w.size(0), cin = x.size(1), kh = w.size(2), kw = w.size(3);
  const Tensor wc = weight("conv2d", "w", w, {cout, cin, kh, kw});
  ZF_CHECK(x.size(2) + padding.top + padding.bottom >= kh &&
               x.size(3) + padding.left + padding.right >= kw,
           "[conv2d] input {} is smaller than the kernel {}x{}", shape_str(x.shape()), kh, kw);
  const Tensor bc = optional_vector("conv2d", "b", b, cout);
  ZF_DISPATCH_CUDA(dev, "conv2d", cuda::conv2d(x.contiguous(), wc, bc, stride, padding));
  return cpu::conv2d(x.contiguous(), wc, bc, stride, padding);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding) {
  return conv2d(x, w, b, stride, Padding2d::uniform(padding));
}

Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom) {
  const Device dev = common_device("pad2d", {&x});
  require_activation("pad2d", "x", x);
  require_rank("pad2d", "x", x, 4);
  ZF_CHECK(left >= 0 && right >= 0 && top >= 0 && bottom >= 0, "[pad2d] negative padding");
  ZF_DISPATCH_CUDA(dev, "pad2d", cuda::pad2d(x.contiguous(), left, right, top, bottom));
  return cpu::pad2d(x.contiguous(), left, right, top, bottom);
}

namespace {

Tensor group_norm_checked(const char* op, const Tensor& x, int groups, const Tensor& gamma,
                          const Tensor& beta, float eps, bool fuse_silu) {
  const Device dev = common_device(op, {&x, &gamma, &beta});
  require_activation(op, "x", x);
  ZF_CHECK(x.ndim() >= 2, "[{}] x must be [B, C, ...], got {}", op, shape_str(x.shape()));
  const int64_t c = x.size(1);
  ZF_CHECK(groups >= 1 && c % groups == 0, "[{}] {} channels do not split into {} groups", op, c,
           groups);
  const Tensor g = optional_vector(op, "gamma", gamma, c);
  const Tensor bt = optional_vector(op, "beta", beta, c);
  ZF_DISPATCH_CUDA(dev, op, cuda::group_norm(x.contiguous(), groups, g, bt, eps, fuse_silu));
  return cpu::group_norm(x.contiguous(), groups, g, bt, eps, fuse_silu);
}

}  // namespace

Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps) {
  return group_norm_checked("group_norm", x, groups, gamma, beta, eps, false);
}

Tensor group_norm_silu(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta,
                       float eps) {
  return group_norm_checked("group_norm_silu", x, groups, gamma, beta, eps, true);
}

Tensor upsample_nearest2x(const Tensor& x) {
  const Device dev = common_device("upsample_nearest2x", {&x});
  require_activation("upsample_nearest2x", "x", x);
  require_rank("upsample_nearest2x", "x", x, 4);
  ZF_DISPATCH_CUDA(dev, "upsample_nearest2x", cuda::upsample_nearest2x(x.contiguous()));
  return cpu::upsample_nearest2x(x.contiguous());
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const AttentionMask& mask) {
  const Device dev = common_device("attention", {&q, &k, &v});
  require_activation("attention", "q", q);
  require_same_dtype("attention", "k", k, q);
  require_same_dtype("attention", "v", v, q);
  require_rank("attention", "q", q, 4);
  require_rank("attention", "k", k, 4);
  require_rank("attention", "v", v, 4);
  ZF_CHECK(q.size(0) == k.size(0) && q.size(3) == k.size(3) && k.size(1) >= 1 &&
               q.size(1) % k.size(1) == 0 && k.size(0) == v.size(0) && k.size(1) == v.size(1) &&
               k.size(2) == v.size(2),
           "[attention] q {}, k {}, v {} do not fit [B, H, Lq, D], [B, Hkv, Lk, D], "
           "[B, Hkv, Lk, Dv] with Hkv dividing H",
           shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  ZF_CHECK(k.size(2) >= 1, "[attention] no keys");
  ZF_CHECK(!mask.causal || q.size(2) == k.size(2),
           "[attention] a causal mask needs as many queries as keys, got {} and {}", q.size(2),
           k.size(2));
  if (!mask.key_lengths.empty()) {
    ZF_CHECK(static_cast<int64_t>(mask.key_lengths.size()) == q.size(0),
             "[attention] {} key lengths for a batch of {}", mask.key_lengths.size(), q.size(0));
    for (int64_t n : mask.key_lengths)
      ZF_CHECK(n >= 1 && n <= k.size(2), "[attention] key length {} outside [1, {}]", n, k.size(2));
  }
  // The GPU takes strided views (cuDNN reads them in place) and may answer with one.
  ZF_DISPATCH_CUDA(dev, "attention", cuda::attention(q, k, v, scale, mask));
  return cpu::attention(q.contiguous(), k.contiguous(), v.contiguous(), scale, mask);
}

namespace {

// The last dim of x must be d; a per-feature vector, when given, must be [d].
Tensor feature_vector(const char* op, const char* what, const Tensor& t, int64_t d) {
  return t.defined() ? weight(op, what, t, {d}) : Tensor{};
}

// RoPE's tables: float32 [1 or B, L, D/2] for x[B, L, H, D] with D even.
void check_rope_tables(const char* op, const Tensor& x, const Tensor& cos, const Tensor& sin) {
  ZF_CHECK(cos.defined() && sin.defined() && cos.dtype() == DType::F32 && sin.dtype() == DType::F32,
           "[{}] cos and sin must be F32 tables", op);
  require_rank(op, "x", x, 4);
  ZF_CHECK(x.size(3) % 2 == 0, "[{}] head dim {} is odd", op, x.size(3));
  ZF_CHECK(cos.ndim() == 3 && cos.shape() == sin.shape() &&
               (cos.size(0) == 1 || cos.size(0) == x.size(0)) && cos.size(1) == x.size(1) &&
               cos.size(2) == x.size(3) / 2,
           "[{}] cos {} and sin {} must be [1 or B, L, D/2] for x {} = [B, L, H, D]", op,
           shape_str(cos.shape()), shape_str(sin.shape()), shape_str(x.shape()));
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  const Device dev = common_device("rms_norm", {&x, &w});
  require_activation("rms_norm", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[rms_norm] x must have at least 1 dim");
  const Tensor wc = feature_vector("rms_norm", "weight", w, x.size(-1));
  ZF_DISPATCH_CUDA(dev, "rms_norm", cuda::rms_norm(x.contiguous(), wc, eps));
  return cpu::rms_norm(x.contiguous(), wc, eps);
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  const Device dev = common_device("layer_norm", {&x, &w, &b});
  require_activation("layer_norm", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[layer_norm] x must have at least 1 dim");
  const int64_t d = x.size(-1);
  const Tensor wc = feature_vector("layer_norm", "weight", w, d);
  const Tensor bc = feature_vector("layer_norm", "bias", b, d);
  ZF_DISPATCH_CUDA(dev, "layer_norm", cuda::layer_norm(x.contiguous(), wc, bc, eps));
  return cpu::layer_norm(x.contiguous(), wc, bc, eps);
}

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, RopeLayout layout) {
  const Device dev = common_device("rope", {&x, &cos, &sin});
  require_activation("rope", "x", x);
  check_rope_tables("rope", x, cos, sin);
  ZF_DISPATCH_CUDA(dev, "rope",
                   cuda::rope(x.contiguous(), cos.contiguous(), sin.contiguous(), layout));
  return cpu::rope(x.contiguous(), cos.contiguous(), sin.contiguous(), layout);
}

namespace {

// A per-sample vector [B, D] of tokens x[B, L, D] in x's dtype, contiguous; undefined stays so.
Tensor per_sample(const char* op, const char* what, const Tensor& v, const Tensor& x) {
  if (!v.defined()) return {};
  require_same_dtype(op, what, v, x);
  ZF_CHECK(v.ndim() == 2 && v.size(0) == x.size(0) && v.size(1) == x.size(2),
           "[{}] {} {} must be [B, D] for x {} = [B, L, D]", op, what, shape_str(v.shape()),
           shape_str(x.shape()));
  return v.contiguous();
}

// x[B, L, D] and its adaLN shift (optional) and scale; returns their device.
Device check_modulation(const char* op, const Tensor& x, const Tensor& shift, const Tensor& scale) {
  const Device dev = common_device(op, {&x, &shift, &scale});
  require_activation(op, "x", x);
  require_rank(op, "x", x, 3);
  ZF_CHECK(scale.defined(), "[{}] scale is undefined", op);
  return dev;
}

}  // namespace

Tensor rms_norm_rope(const Tensor& x, const Tensor& w, float eps, const Tensor& cos,
                     const Tensor& sin, RopeLayout layout) {
  const Device dev = common_device("rms_norm_rope", {&x, &w, &cos, &sin});
  require_activation("rms_norm_rope", "x", x);
  check_rope_tables("rms_norm_rope", x, cos, sin);
  const Tensor wc = feature_vector("rms_norm_rope", "weight", w, x.size(3));
  ZF_DISPATCH_CUDA(
      dev, "rms_norm_rope",
      cuda::rms_norm_rope(x.contiguous(), wc, eps, cos.contiguous(), sin.contiguous(), layout));
  return cpu::rms_norm_rope(x.contiguous(), wc, eps, cos.contiguous(), sin.contiguous(), layout);
}

Tensor rms_norm_modulate(const Tensor& x, const Tensor& w, float eps, const Tensor& shift,
                         const Tensor& scale) {
  const char* op = "rms_norm_modulate";
  const Device dev = check_modulation(op, x, shift, scale);
  const Tensor wc = feature_vector(op, "weight", w, x.size(2));
  const NormEpilogue then{.scale = per_sample(op, "scale", scale, x),
                          .shift = per_sample(op, "shift", shift, x)};
  ZF_DISPATCH_CUDA(dev, op, cuda::rms_norm(x.contiguous(), wc, eps, then));
  return cpu::rms_norm(x.contiguous(), wc, eps, then);
}

Tensor layer_norm_modulate(const Tensor& x, float eps, const Tensor& shift, const Tensor& scale) {
  const char* op = "layer_norm_modulate";
  const Device dev = check_modulation(op, x, shift, scale);
  const NormEpilogue then{.scale = per_sample(op, "scale", scale, x),
                          .shift = per_sample(op, "shift", shift, x)};
  ZF_DISPATCH_CUDA(dev, op, cuda::layer_norm(x.contiguous(), {}, {}, eps, then));
  return cpu::layer_norm(x.contiguous(), {}, {}, eps, then);
}

Tensor add_gated_rms_norm(const Tensor& x, const Tensor& gate, const Tensor& r, const Tensor& w,
                          float eps) {
  const char* op = "add_gated_rms_norm";
  const Device dev = common_device(op, {&x, &gate, &r, &w});
  require_activation(op, "x", x);
  require_rank(op, "x", x, 3);
  require_same_dtype(op, "r", r, x);
  ZF_CHECK(r.shape() == x.shape(), "[{}] r {} must have x's shape {}", op, shape_str(r.shape()),
           shape_str(x.shape()));
  const Tensor wc = feature_vector(op, "weight", w, x.size(2));
  const NormEpilogue then{.residual = x.contiguous(), .gate = per_sample(op, "gate", gate, x)};
  ZF_DISPATCH_CUDA(dev, op, cuda::rms_norm(r.contiguous(), wc, eps, then));
  return cpu::rms_norm(r.contiguous(), wc, eps, then);
}

Tensor embedding(const Tensor& table, std::span<const int32_t> ids, DType dtype) {
  const Device dev = common_device("embedding", {&table});
  require_rank("embedding", "table", table, 2);
  ZF_CHECK(
      is_weight_dtype(table.dtype()) || dtype_is_quantized(table.dtype()) ||
          ((dtype_is_float8(table.dtype()) || !table.row_scales().empty()) && dev == Device::CPU),
      "[embedding] table must be F32, BF16, F16, a GGML block type or (on the CPU) "
      "float8 or int8 with row scales, got {}",
      dtype_name(table.dtype()));
  for (size_t i = 0; i < ids.size(); ++i)
    ZF_CHECK(ids[i] >= 0 && ids[i] < table.size(0),
             "[embedding] id {} at position {} is outside the table of {} rows", ids[i], i,
             table.size(0));
  ZF_CHECK(dtype == DType::F32 || (dtype == DType::BF16 && dev == Device::CUDA),
           "[embedding] output dtype {} asked for; the CPU makes F32, the GPU F32 or BF16",
           dtype_name(dtype));
  ZF_DISPATCH_CUDA(dev, "embedding", cuda::embedding(table.contiguous(), ids, dtype));
  return cpu::embedding(matrix_weight("embedding", "table", table, table.shape()), ids);
}

namespace {

Tensor unary_checked(const char* op, const Tensor& x, cpu::Unary kind) {
  const Device dev = common_device(op, {&x});
  require_activation(op, "x", x);
  ZF_DISPATCH_CUDA(dev, op, cuda::unary(x.contiguous(), kind));
  return cpu::unary(x.contiguous(), kind);
}

Tensor binary_checked(const char* op, const Tensor& a, const Tensor& b, cpu::Binary kind) {
  const Device dev = common_device(op, {&a, &b});
  require_activation(op, "a", a);
  require_same_dtype(op, "b", b, a);
  ZF_CHECK(a.shape() == b.shape(), "[{}] shapes differ: {} and {}", op, shape_str(a.shape()),
           shape_str(b.shape()));
  ZF_DISPATCH_CUDA(dev, op, cuda::binary(a.contiguous(), b.contiguous(), kind));
  return cpu::binary(a.contiguous(), b.contiguous(), kind);
}

Tensor affine_checked(const char* op, const Tensor& x, float mul, float add) {
  const Device dev = common_device(op, {&x});
  require_activation(op, "x", x);
  ZF_DISPATCH_CUDA(dev, op, cuda::affine_scalar(x.contiguous(), mul, add));
  return cpu::affine_scalar(x.contiguous(), mul, add);
}

}  // namespace

Tensor silu(const Tensor& x) {
  return unary_checked("silu", x, cpu::Unary::Silu);
}
Tensor gelu(const Tensor& x, GeluKind kind) {
  switch (kind) {
    case GeluKind::kErf:
      return unary_checked("gelu", x, cpu::Unary::GeluErf);
    case GeluKind::kTanh:
      return unary_checked("gelu", x, cpu::Unary::GeluTanh);
    case GeluKind::kQuick:
      return unary_checked("gelu", x, cpu::Unary::GeluQuick);
  }
  fail("[gelu] unknown kind");
}

Tensor softmax(const Tensor& x) {
  const Device dev = common_device("softmax", {&x});
  require_activation("softmax", "x", x);
  ZF_CHECK(x.ndim() >= 1 && x.size(-1) >= 1, "[softmax] x must have a non-empty last dim, got {}",
           shape_str(x.shape()));
  ZF_DISPATCH_CUDA(dev, "softmax", cuda::softmax(x.contiguous()));
  return cpu::softmax(x.contiguous());
}

Tensor tanh(const Tensor& x) {
  return unary_checked("tanh", x, cpu::Unary::Tanh);
}
Tensor silu_mul(const Tensor& a, const Tensor& b) {
  return binary_checked("silu_mul", a, b, cpu::Binary::SiluMul);
}
Tensor exp(const Tensor& x) {
  return unary_checked("exp", x, cpu::Unary::Exp);
}
Tensor add(const Tensor& a, const Tensor& b) {
  return binary_checked("add", a, b, cpu::Binary::Add);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary_checked("mul", a, b, cpu::Binary::Mul);
}

Tensor mul_scalar(const Tensor& x, float s) {
  return affine_checked("mul_scalar", x, s, 0.0f);
}

Tensor add_scalar(const Tensor& x, float s) {
  return affine_checked("add_scalar", x, 1.0f, s);
}

Tensor patchify(const Tensor& x, int64_t patch, int64_t length) {
  const Device dev = common_device("patchify", {&x});
  require_activation("patchify", "x", x);
  require_rank("patchify", "x", x, 4);
  ZF_CHECK(patch >= 1 && x.size(2) % patch == 0 && x.size(3) % patch == 0,
           "[patchify] x {} is not a whole number of {}x{} patches", shape_str(x.shape()), patch,
           patch);
  const int64_t tokens = (x.size(2) / patch) * (x.size(3) / patch);
  ZF_CHECK(length >= tokens, "[patchify] {} tokens do not fit a length of {}", tokens, length);
  ZF_DISPATCH_CUDA(dev, "patchify", cuda::patchify(x.contiguous(), patch, length));
  return cpu::patchify(x.contiguous(), patch, length);
}

Tensor unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                  int64_t patch) {
  const Device dev = common_device("unpatchify", {&tokens});
  require_activation("unpatchify", "tokens", tokens);
  require_rank("unpatchify", "tokens", tokens, 3);
  ZF_CHECK(patch >= 1 && channels >= 1 && height >= 1 && width >= 1 && height % patch == 0 &&
               width % patch == 0,
           "[unpatchify] a {}x{} latent of {} channels is not a whole number of {}x{} patches",
           height, width, channels, patch, patch);
  ZF_CHECK(tokens.size(2) == patch * patch * channels &&
               tokens.size(1) >= (height / patch) * (width / patch),
           "[unpatchify] tokens {} cannot hold a {}x{} latent of {} channels in {}x{} patches",
           shape_str(tokens.shape()), height, width, channels, patch, patch);
  ZF_DISPATCH_CUDA(dev, "unpatchify",
                   cuda::unpatchify(tokens.contiguous(), channels, height, width, patch));
  return cpu::unpatchify(tokens.contiguous(), channels, height, width, patch);
}

Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end) {
  const Device dev = common_device("fill_rows", {&x, &row});
  require_activation("fill_rows", "x", x);
  require_rank("fill_rows", "x", x, 3);
  if (row.defined()) {
    require_same_dtype("fill_rows", "row", row, x);
    ZF_CHECK(row.numel() == x.size(2), "[fill_rows] row {} does not fit rows of {} features",
             shape_str(row.shape()), x.size(2));
  }
  const size_t batch = static_cast<size_t>(x.size(0));
  ZF_CHECK(begin.size() == batch && end.size() == batch,
           "[fill_rows] {} begins and {} ends for a batch of {}", begin.size(), end.size(), batch);
  for (size_t b = 0; b < batch; ++b)
    ZF_CHECK(0 <= begin[b] && begin[b] <= end[b] && end[b] <= x.size(1),
             "[fill_rows] sample {}: rows [{}, {}) are not inside [0, {})", b, begin[b], end[b],
             x.size(1));
  const Tensor value = row.defined() ? row.contiguous().view({x.size(2)}) : Tensor{};
  ZF_DISPATCH_CUDA(dev, "fill_rows", cuda::fill_rows(x.contiguous(), value, begin, end));
  return cpu::fill_rows(x.contiguous(), value, begin, end);
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  const Device dev = common_device("clamp", {&x});
  require_activation("clamp", "x", x);
  ZF_CHECK(lo <= hi, "[clamp] lo {} > hi {}", lo, hi);
  ZF_DISPATCH_CUDA(dev, "clamp", cuda::clamp(x.contiguous(), lo, hi));
  return cpu::clamp(x.contiguous(), lo, hi);
}

Tensor leaky_relu(const Tensor& x, float negative_slope) {
  const Device dev = common_device("leaky_relu", {&x});
  require_activation("leaky_relu", "x", x);
  ZF_DISPATCH_CUDA(dev, "leaky_relu", cuda::leaky_relu(x.contiguous(), negative_slope));
  return cpu::leaky_relu(x.contiguous(), negative_slope);
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  const Device dev = common_device("prelu", {&x, &slope});
  require_activation("prelu", "x", x);
  ZF_CHECK(x.ndim() >= 2, "[prelu] x must be [B, C, ...], got {}", shape_str(x.shape()));
  const Tensor s = weight("prelu", "slope", slope, {x.size(1)});
  ZF_DISPATCH_CUDA(dev, "prelu", cuda::prelu(x.contiguous(), s));
  return cpu::prelu(x.contiguous(), s);
}

}  // namespace zflow::ops
