// The Tensor side of the CUDA ops that are one kernel each: allocate the output on the GPU,
// hand raw pointers to the launcher (launch.h), turn a launch error into zflow::Error.
// Linear/matmul are in linear.cpp, conv2d in conv2d.cpp.
#include <algorithm>
#include <cstring>
#include <vector>

#include "backend/cuda/context.h"
#include "backend/cuda/kernels.h"
#include "core/error.h"
#include "core/quant_blocks.h"

namespace zflow::cuda {
namespace {

Tensor like(const Tensor& x) {
  return Tensor::empty(x.shape(), x.dtype(), Device::CUDA);
}

Tensor map(const Tensor& a, const Tensor* b, MapOp op, float p0 = 0.0f, float p1 = 0.0f) {
  Tensor y = like(a);
  check_launch(launch_map(op, act_of(a), a.raw(), b ? b->raw() : nullptr, y.raw(), a.numel(), p0,
                          p1, context().stream),
               "map_kernel");
  return y;
}

Tensor rows(const Tensor& x, RowOp op, const Tensor& w, const Tensor& b, float eps,
            const NormEpilogue& then, const char* kernel) {
  Tensor y = like(x);
  const int64_t d = x.size(-1);
  const int64_t n = d == 0 ? 0 : x.numel() / d;
  auto ptr = [](const Tensor& t) { return t.defined() ? t.raw() : nullptr; };
  const RowEpilogue epilogue{.scale = ptr(then.scale),
                             .shift = ptr(then.shift),
                             .residual = ptr(then.residual),
                             .gate = ptr(then.gate),
                             .rows_per_sample = x.ndim() >= 2 ? x.size(-2) : 1};
  check_launch(launch_rows(op, act_of(x), x.raw(), y.raw(), n, d, weight_ref(w), weight_ref(b), eps,
                           epilogue, context().stream),
               kernel);
  return y;
}

// rope(), after a per-head RMSNorm when `normalise`.
Tensor rotate(const Tensor& x, bool normalise, const Tensor& weight, float eps, const Tensor& cos,
              const Tensor& sin, ops::RopeLayout layout) {
  Tensor y = like(x);
  const RopeProblem p{.batch = x.size(0),
                      .len = x.size(1),
                      .heads = x.size(2),
                      .d = x.size(3),
                      .per_batch_table = cos.size(0) != 1,
                      .interleaved = layout == ops::RopeLayout::kInterleaved,
                      .normalise = normalise,
                      .norm = weight_ref(weight),
                      .eps = eps};
  check_launch(launch_rope(act_of(x), x.raw(), cos.data<float>(), sin.data<float>(), y.raw(), p,
                           context().stream),
               "rope_kernel");
  return y;
}

}  // namespace

Tensor upload_i32(const int32_t* values, int64_t n) {
  Tensor host = Tensor::empty({n}, DType::I32);
  std::memcpy(host.raw(), values, static_cast<size_t>(n) * sizeof(int32_t));
  return host.to(Device::CUDA);
}

Tensor unary(const Tensor& x, Unary op) {
  switch (op) {
    case Unary::Silu:
      return map(x, nullptr, MapOp::Silu);
    case Unary::Exp:
      return map(x, nullptr, MapOp::Exp);
    case Unary::Tanh:
      return map(x, nullptr, MapOp::Tanh);
    case Unary::GeluErf:
      return map(x, nullptr, MapOp::GeluErf);
    case Unary::GeluTanh:
      return map(x, nullptr, MapOp::GeluTanh);
    case Unary::GeluQuick:
      return map(x, nullptr, MapOp::GeluQuick);
  }
  fail("[cuda] unknown unary op");
}

Tensor binary(const Tensor& a, const Tensor& b, Binary op) {
  switch (op) {
    case Binary::Add:
      return map(a, &b, MapOp::Add);
    case Binary::Mul:
      return map(a, &b, MapOp::Mul);
    case Binary::SiluMul:
      return map(a, &b, MapOp::SiluMul);
  }
  fail("[cuda] unknown binary op");
}

Tensor affine_scalar(const Tensor& x, float mul, float add) {
  return map(x, nullptr, MapOp::Affine, mul, add);
}

Tensor clamp(const Tensor& x, float lo, float hi) {
  return map(x, nullptr, MapOp::Clamp, lo, hi);
}

Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return map(x, nullptr, MapOp::LeakyRelu, negative_slope);
}

Tensor prelu(const Tensor& x, const Tensor& slope) {
  Tensor y = like(x);
  const int64_t channels = x.size(1);
  if (y.numel() == 0) return y;
  check_launch(launch_prelu(act_of(x), x.raw(), weight_ref(slope), y.raw(), x.numel(), channels,
                            x.numel() / (x.size(0) * channels), context().stream),
               "prelu_kernel");
  return y;
}

Tensor softmax(const Tensor& x) {
  return rows(x, RowOp::Softmax, {}, {}, 0.0f, {}, "softmax_kernel");
}

Tensor rms_norm(const Tensor& x, const Tensor& weight, float eps, const NormEpilogue& then) {
  return rows(x, RowOp::RmsNorm, weight, {}, eps, then, "rms_norm_kernel");
}

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps,
                  const NormEpilogue& then) {
  return rows(x, RowOp::LayerNorm, weight, bias, eps, then, "layer_norm_kernel");
}

Tensor rope(const Tensor& x, const Tensor& cos, const Tensor& sin, ops::RopeLayout layout) {
  return rotate(x, false, {}, 0.0f, cos, sin, layout);
}

Tensor rms_norm_rope(const Tensor& x, const Tensor& weight, float eps, const Tensor& cos,
                     const Tensor& sin, ops::RopeLayout layout) {
  return rotate(x, true, weight, eps, cos, sin, layout);
}

Tensor embedding(const Tensor& table, std::span<const int32_t> ids, DType dtype) {
  const int64_t n = static_cast<int64_t>(ids.size()), d = table.size(1);
  Tensor y = Tensor::empty({n, d}, dtype, Device::CUDA);
  if (y.numel() == 0) return y;
  const Tensor dev_ids = upload_i32(ids.data(), n);
  if (dtype_is_quantized(table.dtype())) {
    check_launch(
        launch_dequantize_rows(block_kind(table.dtype()), static_cast<const uint8_t*>(table.raw()),
                               static_cast<int64_t>(dtype_nbytes(table.dtype(), d)),
                               dev_ids.data<int32_t>(), act_of(y), y.raw(), n, d, context().stream),
        "dequantize_rows_kernel");
    return y;
  }
  check_launch(launch_embedding(act_of(y), weight_ref(table), dev_ids.data<int32_t>(), y.raw(), n,
                                d, context().stream),
               "embedding_kernel");
  return y;
}

Tensor add_gated(const Tensor& x, const Tensor& gate, const Tensor& r) {
  Tensor y = like(x);
  check_launch(launch_add_gated(act_of(x), x.raw(), gate.raw(), r.raw(), y.raw(), x.size(0),
                                x.size(1), x.size(2), context().stream),
               "add_gated_kernel");
  return y;
}

// Each part is `outer` blocks of (its size along dim) x inner elements; part p's blocks go to
// column offset `at` of the output's rows of out_block bytes: one 2-D copy per part.
Tensor concat(const std::vector<Tensor>& parts, int dim, const Shape& out_shape) {
  const DType dtype = parts[0].dtype();
  Tensor y = Tensor::empty(out_shape, dtype, Device::CUDA);
  if (y.numel() == 0) return y;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < dim; ++d) outer *= out_shape[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(dim) + 1; d < out_shape.size(); ++d) inner *= out_shape[d];
  const size_t elem = dtype_size(dtype);
  const size_t out_block = static_cast<size_t>(out_shape[static_cast<size_t>(dim)] * inner) * elem;
  const cudaStream_t stream = context().stream;
  size_t at = 0;
  for (const Tensor& p : parts) {
    const size_t block = static_cast<size_t>(p.size(dim) * inner) * elem;
    char* dst = static_cast<char*>(y.raw()) + at;
    if (block > 0 && outer == 1) {
      ZF_CUDA(cudaMemcpyAsync(dst, p.raw(), block, cudaMemcpyDeviceToDevice, stream));
    } else if (block > 0) {
      ZF_CUDA(cudaMemcpy2DAsync(dst, out_block, p.raw(), block, block, static_cast<size_t>(outer),
                                cudaMemcpyDeviceToDevice, stream));
    }
    at += block;
  }
  return y;
}

Tensor patchify(const Tensor& x, int64_t patch, int64_t length) {
  const PatchLayout s{x.size(0), x.size(1), x.size(2), x.size(3), patch, length};
  Tensor tokens =
      Tensor::empty({s.batch, length, patch * patch * s.channels}, x.dtype(), Device::CUDA);
  check_launch(launch_patchify(act_of(x), x.raw(), tokens.raw(), s, context().stream),
               "patchify_kernel");
  return tokens;
}

Tensor unpatchify(const Tensor& tokens, int64_t channels, int64_t height, int64_t width,
                  int64_t patch) {
  const PatchLayout s{tokens.size(0), channels, height, width, patch, tokens.size(1)};
  Tensor x = Tensor::empty({s.batch, channels, height, width}, tokens.dtype(), Device::CUDA);
  check_launch(launch_unpatchify(act_of(tokens), tokens.raw(), x.raw(), s, context().stream),
               "unpatchify_kernel");
  return x;
}

Tensor fill_rows(const Tensor& x, const Tensor& row, std::span<const int64_t> begin,
                 std::span<const int64_t> end) {
  Tensor y = like(x);
  if (y.numel() == 0) return y;
  Tensor range = Tensor::empty({x.size(0), 2}, DType::I64);
  int64_t* r = range.data<int64_t>();
  for (size_t b = 0; b < begin.size(); ++b) {
    r[2 * b] = begin[b];
    r[2 * b + 1] = end[b];
  }
  const Tensor dev_range = range.to(Device::CUDA);
  check_launch(launch_fill_rows(act_of(x), x.raw(), row.defined() ? row.raw() : nullptr,
                                dev_range.data<int64_t>(), y.raw(), x.size(0), x.size(1), x.size(2),
                                context().stream),
               "fill_rows_kernel");
  return y;
}

Tensor attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, float scale,
                 const ops::AttentionMask& mask) {
  if (Tensor fused = attention_by_cudnn(q_in, k_in, v_in, scale, mask); fused.defined())
    return fused;
  const Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
  AttentionProblem p{};
  p.batch = q.size(0);
  p.heads = q.size(1);
  p.kv_heads = k.size(1);
  p.lq = q.size(2);
  p.lk = k.size(2);
  p.d = q.size(3);
  p.dv = v.size(3);
  p.scale = scale;
  p.causal = mask.causal;
  const size_t shared = attention_shared_bytes(std::max(p.d, p.dv));
  if (shared == 0 || shared > context().max_shared_per_block)
    return attention_by_matmul(q, k, v, scale, mask);
  Tensor out = Tensor::empty({p.batch, p.heads, p.lq, p.dv}, q.dtype(), Device::CUDA);
  if (out.numel() == 0) return out;
  ZF_CHECK(p.batch * p.heads <= 65535,
           "[attention] batch x heads = {} is more than one GPU launch takes (65535)",
           p.batch * p.heads);
  Tensor lengths;
  if (!mask.key_lengths.empty()) {
    std::vector<int32_t> host(mask.key_lengths.begin(), mask.key_lengths.end());
    lengths = upload_i32(host.data(), p.batch);
    p.key_lengths = lengths.data<int32_t>();
  }
  check_launch(
      launch_attention(act_of(q), q.raw(), k.raw(), v.raw(), out.raw(), p, context().stream),
      "flash_attention_kernel");
  return out;
}

Tensor group_norm(const Tensor& x, int groups, const Tensor& gamma, const Tensor& beta, float eps,
                  bool fuse_silu) {
  Tensor y = like(x);
  const int64_t batch = x.size(0), channels = x.size(1);
  if (y.numel() == 0) return y;
  const int64_t spatial = x.numel() / (batch * channels);
  Tensor stats = Tensor::empty({batch * groups, 2}, DType::F32, Device::CUDA);
  check_launch(launch_group_norm(act_of(x), x.raw(), stats.data<float>(), weight_ref(gamma),
                                 weight_ref(beta), y.raw(), batch, channels, groups, spatial, eps,
                                 fuse_silu, context().stream),
               "group_norm kernels");
  return y;
}

Tensor pad2d(const Tensor& x, int left, int right, int top, int bottom) {
  const int64_t h = x.size(2), w = x.size(3);
  Tensor y = Tensor::empty({x.size(0), x.size(1), h + top + bottom, w + left + right}, x.dtype(),
                           Device::CUDA);
  check_launch(launch_pad2d(act_of(x), x.raw(), y.raw(), x.size(0) * x.size(1), h, w, top, bottom,
                            left, right, context().stream),
               "pad2d_kernel");
  return y;
}

Tensor upsample_nearest2x(const Tensor& x) {
  const int64_t h = x.size(2), w = x.size(3);
  Tensor y = Tensor::empty({x.size(0), x.size(1), 2 * h, 2 * w}, x.dtype(), Device::CUDA);
  check_launch(
      launch_upsample2x(act_of(x), x.raw(), y.raw(), x.size(0) * x.size(1), h, w, context().stream),
      "upsample2x_kernel");
  return y;
}

}  // namespace zflow::cuda
