// Scaled dot-product attention, flash style: each task owns a block of query rows and
// walks the keys in blocks, keeping a running row maximum m, a running denominator l
// and an unnormalised output O (the online softmax):
//   S = scale * Q_blk K_blk^T;  m' = max(m, rowmax S);  P = exp(S - m')
//   l = l * exp(m - m') + rowsum P;  O = O * exp(m - m') + P V_blk;  m = m'
// and finally O / l. Memory per task is kQueryBlock x kKeyBlock scores, so the VAE's
// 16384-token mid-block attention never builds its 1 GB score matrix. The block
// products go through gemm, called from inside the task (nested, so single-threaded).
// Under MatmulPrecision::Bfloat16, where gemm has the bfloat16-pair kernel, keys and values
// are rounded to bfloat16 once and both products run on it (Q and P rounded as gemm packs
// them), as PyTorch's attention computes a bfloat16 model: twice the float32 rate, which at
// 1024² is a tenth of a Z-Image step.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "backend/cpu/exp_shifted.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/kernels.h"
#include "core/thread_pool.h"

namespace zflow::cpu {
namespace {

constexpr int64_t kQueryBlock = 64;
constexpr int64_t kKeyBlock = 256;

struct Dims {
  int64_t lq, lk, d, dv;
  DType kv_dtype;  // F32, or BF16 for the bfloat16-pair kernel
};

// Element `i` of a key or value array in the dtype of `dims`.
const void* kv_at(const void* base, const Dims& dims, int64_t i) {
  return static_cast<const char*>(base) + i * static_cast<int64_t>(dtype_size(dims.kv_dtype));
}

// One block of query rows q[rows, d] against keys k[lk, d], values v[lk, dv] -> out[rows, dv].
// Row r sees keys [0, visible(r)): all keys, the first key_length, or (causal) the keys up to
// its own position first_row + r. Key 0 is always visible, so every running maximum is
// finite after the first key block and a fully hidden later block contributes exp(-inf) = 0.
void attend_block(const float* q, const void* k, const void* v, float* out, int64_t rows,
                  const Dims& dims, float scale, int64_t key_length, bool causal,
                  int64_t first_row) {
  auto visible = [&](int64_t r) {
    return causal ? std::min(key_length, first_row + r + 1) : key_length;
  };
  const int64_t keys = visible(rows - 1);                             // the last row sees the most
  std::vector<float> scores(static_cast<size_t>(rows * kKeyBlock));   // [rows, kKeyBlock]
  std::vector<float> acc(static_cast<size_t>(rows * dims.dv), 0.0f);  // [rows, dv]
  std::vector<float> row_max(static_cast<size_t>(rows), -std::numeric_limits<float>::infinity());
  std::vector<double> row_sum(static_cast<size_t>(rows), 0.0);

  for (int64_t k0 = 0; k0 < keys; k0 += kKeyBlock) {
    const int64_t kb = std::min(kKeyBlock, keys - k0);
    GemmArgs s;  // scores[rows, kb] = scale * q[rows, d] @ k[k0:k0+kb, d]^T
    s.trans_b = true;
    s.m = rows;
    s.n = kb;
    s.k = dims.d;
    s.alpha = scale;
    s.a = q;
    s.lda = dims.d;
    s.b = kv_at(k, dims, k0 * dims.d);
    s.b_dtype = dims.kv_dtype;
    s.ldb = dims.d;
    s.c = scores.data();
    s.ldc = kb;
    gemm(s);

    for (int64_t r = 0; r < rows; ++r) {
      float* srow = scores.data() + r * kb;
      const int64_t hidden_from = std::clamp<int64_t>(visible(r) - k0, 0, kb);
      std::fill(srow + hidden_from, srow + kb, -std::numeric_limits<float>::infinity());
      const float block_max = cpu::row_max(srow, kb);
      const float new_max = std::max(row_max[r], block_max);
      const float correction = std::exp(row_max[r] - new_max);  // 0 on the first block
      const double sum = exp_shifted(srow, srow, kb, new_max);
      row_sum[r] = row_sum[r] * correction + sum;
      row_max[r] = new_max;
      if (correction != 1.0f) {
        float* arow = acc.data() + r * dims.dv;
        for (int64_t j = 0; j < dims.dv; ++j) arow[j] *= correction;
      }
    }

    GemmArgs o;  // acc[rows, dv] += p[rows, kb] @ v[k0:k0+kb, dv]
    o.m = rows;
    o.n = dims.dv;
    o.k = kb;
    o.a = scores.data();
    o.lda = kb;
    o.b = kv_at(v, dims, k0 * dims.dv);
    o.b_dtype = dims.kv_dtype;
    o.ldb = dims.dv;
    o.beta = 1.0f;
    o.c = acc.data();
    o.ldc = dims.dv;
    gemm(o);
  }

  for (int64_t r = 0; r < rows; ++r) {
    const float inv = static_cast<float>(1.0 / row_sum[r]);
    for (int64_t j = 0; j < dims.dv; ++j) out[r * dims.dv + j] = acc[r * dims.dv + j] * inv;
  }
}

}  // namespace

Tensor attention(const Tensor& q, const Tensor& k, const Tensor& v, float scale,
                 const ops::AttentionMask& mask) {
  const int64_t batch = q.size(0), heads = q.size(1), kv_heads = k.size(1);
  const int64_t group = heads / kv_heads;  // query heads per kv head
  const bool pairs = matmul_precision() == MatmulPrecision::Bfloat16 &&
                     gemm_default_isa(DType::BF16) == GemmIsa::Avx512Bf16;
  const DType kv_dtype = pairs ? DType::BF16 : DType::F32;
  const Dims dims{q.size(2), k.size(2), q.size(3), v.size(3), kv_dtype};
  const Tensor keys = k.to(kv_dtype), values = v.to(kv_dtype);
  Tensor out = Tensor::empty({batch, heads, dims.lq, dims.dv}, DType::F32);
  const int64_t blocks_per_head = (dims.lq + kQueryBlock - 1) / kQueryBlock;
  const float* pq = q.data<float>();  // [batch, heads, lq, d]
  const void* pk = keys.raw();        // [batch, kv_heads, lk, d]
  const void* pv = values.raw();      // [batch, kv_heads, lk, dv]
  float* po = out.data<float>();      // [batch, heads, lq, dv]
  parallel_for(batch * heads * blocks_per_head, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      const int64_t bh = task / blocks_per_head;  // b * heads + h
      const int64_t b = bh / heads;
      const int64_t kvh = b * kv_heads + (bh % heads) / group;
      const int64_t q0 = (task % blocks_per_head) * kQueryBlock;
      const int64_t rows = std::min(kQueryBlock, dims.lq - q0);
      const int64_t key_length = mask.key_lengths.empty() ? dims.lk : mask.key_lengths[b];
      attend_block(pq + (bh * dims.lq + q0) * dims.d, kv_at(pk, dims, kvh * dims.lk * dims.d),
                   kv_at(pv, dims, kvh * dims.lk * dims.dv), po + (bh * dims.lq + q0) * dims.dv,
                   rows, dims, scale, key_length, mask.causal, q0);
    }
  });
  return out;
}

}  // namespace zflow::cpu
