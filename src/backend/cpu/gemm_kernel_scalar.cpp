// gemm's portable kernel: 128-bit vectors through the GCC / Clang vector extension, so
// it compiles to SSE2 on baseline x86-64 and to NEON on Arm without intrinsics.
#include <cstdint>
#include <cstring>

#include "backend/cpu/gemm_blocking.h"
#include "backend/cpu/gemm_microkernel.h"
#include "core/dtype.h"

namespace zflow::cpu {

namespace {

struct PortableOps {
  using V = float __attribute__((vector_size(16)));
  static constexpr int kWidth = 4;
  static V zero() { return V{0.0f, 0.0f, 0.0f, 0.0f}; }
  static V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof(v));
    return v;
  }
  static void store(float* p, V v) { std::memcpy(p, &v, sizeof(v)); }
  static V broadcast(float x) { return V{x, x, x, x}; }
  static V fma(V a, V b, V c) { return a * b + c; }
  static V mul(V a, V b) { return a * b; }
  static void widen_f16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(src[i]);
  }
};

constexpr GemmBlocking kB = kGemmBlockingScalar;
static_assert(kB.nr % PortableOps::kWidth == 0);

const GemmKernel kKernel{
    GemmIsa::Scalar,
    kB,
    gemm_detail::micro_kernel<PortableOps, kB.mr, kB.nr / PortableOps::kWidth>,
    gemm_detail::pack_a<kB.mr>,
    gemm_detail::pack_b<PortableOps, kB.nr>,
};

}  // namespace

const GemmKernel* gemm_kernel_scalar() {
  return &kKernel;
}

}  // namespace zflow::cpu
