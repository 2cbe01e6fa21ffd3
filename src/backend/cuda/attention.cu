// Fused scaled dot-product attention (flash attention, forward), fp32 math on float or bf16
// inputs. Never builds the Lq x Lk score matrix: a block owns kRows query rows of one
// (batch, head) and walks the visible keys in tiles of kKeys, keeping per row the running
// maximum m, the running denominator l and the unnormalised output (the online softmax):
//   s = (scale q) . k;  m' = max(m, max s);  p = exp(s - m');  l = l e^(m - m') + sum p;
//   acc = acc e^(m - m') + p V;  and at the end out = acc / l.
// Layout of the work: 4 warps x 8 rows each. For the scores a lane owns two keys of the
// tile (lane, lane + 32) and loops over the head dim, reading its K row from shared memory
// (rows padded by one float so the 32 lanes hit 32 banks) and the query from a broadcast;
// for P V a lane owns the output features lane + 32 c and reads p from a per-warp shared
// buffer (broadcast). SIMT fp32 throughout: a correctness-first kernel; a tensor-core
// (mma.sync bf16) version is the next step for speed.
// Masks: a row sees keys [0, visible) with visible = key_length (per batch) or, causal,
// min(key_length, row + 1). Key 0 is always visible, so the running maximum is finite
// after the first tile and a fully hidden later tile contributes exp(-inf) = 0.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kRowsPerWarp = 8;
constexpr int kRows = kWarps * kRowsPerWarp;  // query rows per block
constexpr int kKeys = 64;                     // keys per tile: two per lane
constexpr int kThreads = kWarps * 32;

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

template <int kD>
constexpr size_t shared_floats() {
  return size_t{kRows} * kD                        // Q, pre-scaled
         + size_t{kKeys} * (kD + 1)                // K tile, padded rows
         + size_t{kKeys} * kD                      // V tile
         + size_t{kWarps} * kRowsPerWarp * kKeys;  // P, per warp
}

template <typename T, int kD>
__global__ void __launch_bounds__(kThreads)
    flash_attention_kernel(const T* __restrict__ q, const T* __restrict__ k,
                           const T* __restrict__ v, T* __restrict__ out, AttentionProblem p) {
  constexpr int kDimsPerLane = kD / 32;
  extern __shared__ float smem[];
  float* qs = smem;                   // [kRows][kD]
  float* ks = qs + kRows * kD;        // [kKeys][kD + 1]
  float* vs = ks + kKeys * (kD + 1);  // [kKeys][kD]
  float* ps = vs + kKeys * kD;        // [kWarps][kRowsPerWarp][kKeys]
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;

  const int64_t bh = blockIdx.y;  // b * heads + h
  const int64_t b = bh / p.heads;
  const int64_t kvh = b * p.kv_heads + (bh % p.heads) / (p.heads / p.kv_heads);
  const int64_t q0 = int64_t{blockIdx.x} * kRows;
  const T* qb = q + (bh * p.lq) * p.d;
  const T* kb = k + (kvh * p.lk) * p.d;
  const T* vb = v + (kvh * p.lk) * p.dv;
  const int64_t key_length = p.key_lengths ? p.key_lengths[b] : p.lk;
  auto visible = [&](int64_t row) { return p.causal ? min64(key_length, row + 1) : key_length; };

  for (int i = tid; i < kRows * kD; i += kThreads) {
    const int r = i / kD, c = i % kD;
    const int64_t row = q0 + r;
    qs[i] = row < p.lq && c < p.d ? to_float(qb[row * p.d + c]) * p.scale : 0.0f;
  }

  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    m[i] = -INFINITY;
    l[i] = 0.0f;
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) acc[i][c] = 0.0f;
  }

  const int64_t last_row = min64(q0 + kRows, p.lq) - 1;
  const int64_t keys_end = visible(last_row);  // the last row sees the most keys
  float* pw = ps + warp * kRowsPerWarp * kKeys;
  for (int64_t k0 = 0; k0 < keys_end; k0 += kKeys) {
    __syncthreads();  // the previous tile is no longer read (and Q is stored, first time)
    for (int i = tid; i < kKeys * kD; i += kThreads) {
      const int r = i / kD, c = i % kD;
      const int64_t key = k0 + r;
      ks[r * (kD + 1) + c] = key < p.lk && c < p.d ? to_float(kb[key * p.d + c]) : 0.0f;
      vs[i] = key < p.lk && c < p.dv ? to_float(vb[key * p.dv + c]) : 0.0f;
    }
    __syncthreads();

    float s[kRowsPerWarp][2];
#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) s[i][0] = s[i][1] = 0.0f;
    const float* k_lo = ks + lane * (kD + 1);
    const float* k_hi = ks + (lane + 32) * (kD + 1);
    const float* qw = qs + warp * kRowsPerWarp * kD;
    for (int c = 0; c < p.d; ++c) {
      const float a = k_lo[c], bv = k_hi[c];
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
        const float qv = qw[i * kD + c];
        s[i][0] = fmaf(qv, a, s[i][0]);
        s[i][1] = fmaf(qv, bv, s[i][1]);
      }
    }

#pragma unroll
    for (int i = 0; i < kRowsPerWarp; ++i) {
      const int64_t vis = visible(q0 + warp * kRowsPerWarp + i);
      if (k0 + lane >= vis) s[i][0] = -INFINITY;
      if (k0 + lane + 32 >= vis) s[i][1] = -INFINITY;
      float mx = fmaxf(s[i][0], s[i][1]);
#pragma unroll
      for (int off = 16; off > 0; off /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float m_new = fmaxf(m[i], mx);
      // Only a row with nothing visible yet has m_new = -inf (cannot happen: key 0 is
      // always visible); guard anyway so it yields zeros, not NaN.
      const float base = m_new == -INFINITY ? 0.0f : m_new;
      const float corr = expf(m[i] - base);
      const float p0 = expf(s[i][0] - base), p1 = expf(s[i][1] - base);
      float sum = p0 + p1;
#pragma unroll
      for (int off = 16; off > 0; off /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      l[i] = l[i] * corr + sum;
      m[i] = m_new;
#pragma unroll
      for (int c = 0; c < kDimsPerLane; ++c) acc[i][c] *= corr;
      pw[i * kKeys + lane] = p0;
      pw[i * kKeys + lane + 32] = p1;
    }
    __syncwarp();

    const int keys_here = static_cast<int>(min64(kKeys, keys_end - k0));
    for (int j = 0; j < keys_here; ++j) {
      float vv[kDimsPerLane];
#pragma unroll
      for (int c = 0; c < kDimsPerLane; ++c) vv[c] = vs[j * kD + lane + 32 * c];
#pragma unroll
      for (int i = 0; i < kRowsPerWarp; ++i) {
        const float pij = pw[i * kKeys + j];
#pragma unroll
        for (int c = 0; c < kDimsPerLane; ++c) acc[i][c] = fmaf(pij, vv[c], acc[i][c]);
      }
    }
    __syncwarp();
  }

#pragma unroll
  for (int i = 0; i < kRowsPerWarp; ++i) {
    const int64_t row = q0 + warp * kRowsPerWarp + i;
    if (row >= p.lq) continue;
    const float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
    T* o = out + (bh * p.lq + row) * p.dv;
#pragma unroll
    for (int c = 0; c < kDimsPerLane; ++c) {
      const int dim = lane + 32 * c;
      if (dim < p.dv) o[dim] = from_float<T>(acc[i][c] * inv);
    }
  }
}

template <typename T, int kD>
cudaError_t launch(const void* q, const void* k, const void* v, void* out,
                   const AttentionProblem& p, cudaStream_t stream) {
  constexpr size_t bytes = shared_floats<kD>() * sizeof(float);
  // The attribute belongs to the kernel; setting it on every call is cheap and thread-safe.
  cudaError_t status =
      cudaFuncSetAttribute(flash_attention_kernel<T, kD>,
                           cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
  if (status != cudaSuccess) return status;
  const dim3 grid(static_cast<unsigned>((p.lq + kRows - 1) / kRows),
                  static_cast<unsigned>(p.batch * p.heads));
  flash_attention_kernel<T, kD>
      <<<grid, kThreads, bytes, stream>>>(static_cast<const T*>(q), static_cast<const T*>(k),
                                          static_cast<const T*>(v), static_cast<T*>(out), p);
  return cudaGetLastError();
}

}  // namespace

size_t attention_shared_bytes(int64_t dims) {
  if (dims <= 64) return shared_floats<64>() * sizeof(float);
  if (dims <= 128) return shared_floats<128>() * sizeof(float);
  if (dims <= 256) return shared_floats<256>() * sizeof(float);
  return 0;
}

cudaError_t launch_attention(Act t, const void* q, const void* k, const void* v, void* out,
                             const AttentionProblem& p, cudaStream_t stream) {
  if (p.batch * p.heads * p.lq * p.dv == 0) return cudaSuccess;
  if (p.batch * p.heads > 65535) return cudaErrorInvalidConfiguration;
  const int64_t dims = p.d > p.dv ? p.d : p.dv;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    if (dims <= 64) return launch<T, 64>(q, k, v, out, p, stream);
    if (dims <= 128) return launch<T, 128>(q, k, v, out, p, stream);
    if (dims <= 256) return launch<T, 256>(q, k, v, out, p, stream);
    return cudaErrorInvalidValue;
  });
}

}  // namespace zflow::cuda
