// Argument checks shared by every backend, then dispatch on the device of the inputs.
// Only the CPU backend exists so far; a CUDA tensor gets a clear error.
#include "backend/ops.h"

#include <initializer_list>

#include "backend/cpu/kernels.h"
#include "core/error.h"

namespace zflow::ops {
namespace {

bool is_weight_dtype(DType t) {
  return t == DType::F32 || t == DType::BF16 || t == DType::F16;
}

// All inputs on one device; CUDA has no kernels yet.
void require_cpu(const char* op, std::initializer_list<const Tensor*> inputs) {
  for (const Tensor* t : inputs) {
    if (!t->defined()) continue;
    ZF_CHECK(t->device() == Device::CPU, "[{}] has no CUDA implementation yet", op);
  }
}

void require_f32(const char* op, const char* what, const Tensor& t) {
  ZF_CHECK(t.defined(), "[{}] {} is undefined", op, what);
  ZF_CHECK(t.dtype() == DType::F32, "[{}] {} must be F32 (activations are float32), got {} {}", op,
           what, dtype_name(t.dtype()), shape_str(t.shape()));
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

// A matrix weight that may also be in a GGML block type (linear, embedding): kernels
// dequantise its blocks as they read them.
Tensor matrix_weight(const char* op, const char* what, const Tensor& t, const Shape& expected) {
  if (!dtype_is_quantized(t.dtype())) return weight(op, what, t, expected);
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
  require_cpu("linear", {&x, &w, &b});
  require_f32("linear", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[linear] x must have at least 1 dim");
  ZF_CHECK(w.ndim() == 2, "[linear] w must be [N, K], got {}", shape_str(w.shape()));
  const int64_t n = w.size(0), k = x.size(-1);
  const Tensor wc = matrix_weight("linear", "w", w, {n, k});
  return cpu::linear(x.contiguous(), wc, optional_vector("linear", "b", b, n));
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  require_cpu("matmul", {&a, &b});
  require_f32("matmul", "a", a);
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
  return cpu::matmul(a.contiguous(), b.contiguous());
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, Padding2d padding) {
  require_cpu("conv2d", {&x, &w, &b});
  require_f32("conv2d", "x", x);
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
  return cpu::conv2d(x.contiguous(), wc, optional_vector("conv2d", "b", b, cout), stride, padding);
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int padding) {
  return conv2d(x, w, b, stride, Padding2d::uniform(padding));
}

Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom) {
  require_cpu("pad2d", {&x});
  require_f32("pad2d", "x", x);
  require_rank("pad2d", "x", x, 4);
  ZF_CHECK(left >= 0 && right >= 0 && top >= 0 && bottom >= 0, "[pad2d] negative padding");
  return cpu::pad2d(x.contiguous(), left, right, top, bottom);
}

namespace {

Tensor group_norm_checked(const char* op, const Tensor& x, int groups, const Tensor& gamma,
                          const Tensor& beta, float eps, bool fuse_silu) {
  require_cpu(op, {&x, &gamma, &beta});
  require_f32(op, "x", x);
  ZF_CHECK(x.ndim() >= 2, "[{}] x must be [B, C, ...], got {}", op, shape_str(x.shape()));
  const int64_t c = x.size(1);
  ZF_CHECK(groups >= 1 && c % groups == 0, "[{}] {} channels do not split into {} groups", op, c,
           groups);
  return cpu::group_norm(x.contiguous(), groups, optional_vector(op, "gamma", gamma, c),
                         optional_vector(op, "beta", beta, c), eps, fuse_silu);
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
  require_cpu("upsample_nearest2x", {&x});
  require_f32("upsample_nearest2x", "x", x);
  require_rank("upsample_nearest2x", "x", x, 4);
  return cpu::upsample_nearest2x(x.contiguous());
}

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const AttentionMask& mask) {
  require_cpu("attention", {&q, &k, &v});
  require_f32("attention", "q", q);
  require_f32("attention", "k", k);
  require_f32("attention", "v", v);
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
  return cpu::attention(q.contiguous(), k.contiguous(), v.contiguous(), scale, mask);
}

namespace {

// The last dim of x must be d; a per-feature vector, when given, must be [d].
Tensor feature_vector(const char* op, const char* what, const Tensor& t, int64_t d) {
  return t.defined() ? weight(op, what, t, {d}) : Tensor{};
}

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& w, float eps) {
  require_cpu("rms_norm", {&x, &w});
  require_f32("rms_norm", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[rms_norm] x must have at least 1 dim");
  return cpu::rms_norm(x.contiguous(), feature_vector("rms_norm", "weight", w, x.size(-1)), eps);
}

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps) {
  require_cpu("layer_norm", {&x, &w, &b});
  require_f32("layer_norm", "x", x);
  ZF_CHECK(x.ndim() >= 1, "[layer_norm] x must have at least 1 dim");
  const int64_t d = x.size(-1);
  return cpu::layer_norm(x.contiguous(), feature_vector("layer_norm", "weight", w, d),
                         feature_vector("layer_norm", "bias", b, d), eps);
}

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, RopeLayout layout) {
  require_cpu("rope", {&x, &cos, &sin});
  require_f32("rope", "x", x);
  require_f32("rope", "cos", cos);
  require_f32("rope", "sin", sin);
  require_rank("rope", "x", x, 4);
  ZF_CHECK(x.size(3) % 2 == 0, "[rope] head dim {} is odd", x.size(3));
  ZF_CHECK(cos.ndim() == 3 && cos.shape() == sin.shape() &&
               (cos.size(0) == 1 || cos.size(0) == x.size(0)) && cos.size(1) == x.size(1) &&
               cos.size(2) == x.size(3) / 2,
           "[rope] cos {} and sin {} must be [1 or B, L, D/2] for x {} = [B, L, H, D]",
           shape_str(cos.shape()), shape_str(sin.shape()), shape_str(x.shape()));
  return cpu::rope(x.contiguous(), cos.contiguous(), sin.contiguous(), layout);
}

Tensor embedding(const Tensor& table, std::span<const int32_t> ids) {
  require_cpu("embedding", {&table});
  require_rank("embedding", "table", table, 2);
  ZF_CHECK(is_weight_dtype(table.dtype()) || dtype_is_quantized(table.dtype()),
           "[embedding] table must be F32, BF16, F16 or a GGML block type, got {}",
           dtype_name(table.dtype()));
  for (size_t i = 0; i < ids.size(); ++i)
    ZF_CHECK(ids[i] >= 0 && ids[i] < table.size(0),
             "[embedding] id {} at position {} is outside the table of {} rows", ids[i], i,
             table.size(0));
  return cpu::embedding(matrix_weight("embedding", "table", table, table.shape()), ids);
}

namespace {

Tensor unary_checked(const char* op, const Tensor& x, cpu::Unary kind) {
  require_cpu(op, {&x});
  require_f32(op, "x", x);
  return cpu::unary(x.contiguous(), kind);
}

Tensor binary_checked(const char* op, const Tensor& a, const Tensor& b, cpu::Binary kind) {
  require_cpu(op, {&a, &b});
  require_f32(op, "a", a);
  require_f32(op, "b", b);
  ZF_CHECK(a.shape() == b.shape(), "[{}] shapes differ: {} and {}", op, shape_str(a.shape()),
           shape_str(b.shape()));
  return cpu::binary(a.contiguous(), b.contiguous(), kind);
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
  require_cpu("softmax", {&x});
  require_f32("softmax", "x", x);
  ZF_CHECK(x.ndim() >= 1 && x.size(-1) >= 1, "[softmax] x must have a non-empty last dim, got {}",
           shape_str(x.shape()));
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
  require_cpu("mul_scalar", {&x});
  require_f32("mul_scalar", "x", x);
  return cpu::affine_scalar(x.contiguous(), s, 0.0f);
}

Tensor add_scalar(const Tensor& x, float s) {
  require_cpu("add_scalar", {&x});
  require_f32("add_scalar", "x", x);
  return cpu::affine_scalar(x.contiguous(), 1.0f, s);
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  require_cpu("clamp", {&x});
  require_f32("clamp", "x", x);
  ZF_CHECK(lo <= hi, "[clamp] lo {} > hi {}", lo, hi);
  return cpu::clamp(x.contiguous(), lo, hi);
}

}  // namespace zflow::ops
