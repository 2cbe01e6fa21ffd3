// Elementwise kernels: y = op(a) or op(a, b), float32 math on float or bf16 storage. Each
// thread handles packs of 16 bytes (4 floats or 8 bf16) when every pointer is 16-byte
// aligned, and single elements otherwise and for the tail.
#include "backend/cuda/dtype.cuh"

namespace zflow::cuda {
namespace {

constexpr int kThreads = 256;

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// kTwo: op reads a and b; otherwise only a (b is null).
template <typename T, bool kTwo, typename Op>
__global__ void map_kernel(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ y,
                           int64_t n, bool packed, Op op) {
  constexpr int N = 16 / sizeof(T);
  const int64_t stride = int64_t{gridDim.x} * blockDim.x;
  const int64_t first = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  int64_t done = 0;  // elements covered by whole packs
  if (packed) {
    const int64_t packs = n / N;
    for (int64_t p = first; p < packs; p += stride) {
      const Pack<T, N> pa = reinterpret_cast<const Pack<T, N>*>(a)[p];
      Pack<T, N> pb;
      if constexpr (kTwo) pb = reinterpret_cast<const Pack<T, N>*>(b)[p];
      Pack<T, N> out;
#pragma unroll
      for (int i = 0; i < N; ++i)
        out.v[i] = from_float<T>(op(to_float(pa.v[i]), kTwo ? to_float(pb.v[i]) : 0.0f));
      reinterpret_cast<Pack<T, N>*>(y)[p] = out;
    }
    done = packs * N;
  }
  for (int64_t i = done + first; i < n; i += stride)
    y[i] = from_float<T>(op(to_float(a[i]), kTwo ? to_float(b[i]) : 0.0f));
}

// The same formulas as backend/cpu/elementwise.cpp, in float.
struct Silu {
  __device__ float operator()(float v, float) const { return v / (1.0f + expf(-v)); }
};
struct Exp {
  __device__ float operator()(float v, float) const { return expf(v); }
};
struct Tanh {
  __device__ float operator()(float v, float) const { return tanhf(v); }
};
struct GeluErf {
  __device__ float operator()(float v, float) const {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  }
};
struct GeluTanh {
  __device__ float operator()(float v, float) const {
    const float inner = 0.79788456080286536f * (v + 0.044715f * v * v * v);  // sqrt(2/pi)
    return 0.5f * v * (1.0f + tanhf(inner));
  }
};
struct GeluQuick {
  __device__ float operator()(float v, float) const { return v / (1.0f + expf(-1.702f * v)); }
};
struct Affine {
  float mul, add;
  __device__ float operator()(float v, float) const { return v * mul + add; }
};
struct Clamp {
  float lo, hi;
  // NaN stays NaN, as std::clamp on the CPU leaves it (fmaxf would turn it into lo).
  __device__ float operator()(float v, float) const { return v != v ? v : fminf(fmaxf(v, lo), hi); }
};
struct LeakyRelu {
  float slope;
  __device__ float operator()(float v, float) const { return v >= 0.0f ? v : v * slope; }
};
struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};
struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};
struct SiluMul {
  __device__ float operator()(float a, float b) const { return a / (1.0f + expf(-a)) * b; }
};

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

template <bool kTwo, typename Op>
cudaError_t map(Act t, const void* a, const void* b, void* y, int64_t n, Op op,
                cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const bool packed = aligned16(a) && aligned16(y) && (!kTwo || aligned16(b));
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    constexpr int N = 16 / sizeof(T);
    const int64_t items = packed ? n / N + n % N : n;
    map_kernel<T, kTwo><<<grid_for(items, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(y), n, packed, op);
    return cudaGetLastError();
  });
}

template <typename T>
__global__ void prelu_kernel(const T* __restrict__ x, WeightRef slope, T* __restrict__ y, int64_t n,
                             int64_t channels, int64_t plane) {
  ZF_GRID_STRIDE(i, n) {
    const float v = to_float(x[i]);
    y[i] = from_float<T>(v >= 0.0f ? v : v * load(slope, i / plane % channels));
  }
}

}  // namespace

cudaError_t launch_prelu(Act t, const void* x, WeightRef slope, void* y, int64_t n,
                         int64_t channels, int64_t plane, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  return with_act(t, [&](auto zero) {
    using T = decltype(zero);
    prelu_kernel<<<grid_for(n, kThreads), kThreads, 0, stream>>>(
        static_cast<const T*>(x), slope, static_cast<T*>(y), n, channels, plane);
    return cudaGetLastError();
  });
}

cudaError_t launch_map(MapOp op, Act t, const void* a, const void* b, void* y, int64_t n, float p0,
                       float p1, cudaStream_t stream) {
  switch (op) {
    case MapOp::Silu:
      return map<false>(t, a, b, y, n, Silu{}, stream);
    case MapOp::Exp:
      return map<false>(t, a, b, y, n, Exp{}, stream);
    case MapOp::Tanh:
      return map<false>(t, a, b, y, n, Tanh{}, stream);
    case MapOp::GeluErf:
      return map<false>(t, a, b, y, n, GeluErf{}, stream);
    case MapOp::GeluTanh:
      return map<false>(t, a, b, y, n, GeluTanh{}, stream);
    case MapOp::GeluQuick:
      return map<false>(t, a, b, y, n, GeluQuick{}, stream);
    case MapOp::Affine:
      return map<false>(t, a, b, y, n, Affine{p0, p1}, stream);
    case MapOp::Clamp:
      return map<false>(t, a, b, y, n, Clamp{p0, p1}, stream);
    case MapOp::LeakyRelu:
      return map<false>(t, a, b, y, n, LeakyRelu{p0}, stream);
    case MapOp::Add:
      return map<true>(t, a, b, y, n, Add{}, stream);
    case MapOp::Mul:
      return map<true>(t, a, b, y, n, Mul{}, stream);
    case MapOp::SiluMul:
      return map<true>(t, a, b, y, n, SiluMul{}, stream);
  }
  return cudaErrorInvalidValue;
}

}  // namespace zflow::cuda
