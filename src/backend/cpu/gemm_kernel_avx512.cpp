// gemm's AVX-512F kernel (Skylake-SP and later, Zen 4): 12 x 32 register tile of zmm
// accumulators. Compiled for AVX-512F by a target pragma; gemm picks it at run time.
#include <cstdint>

#include "backend/cpu/dequant_avx2.h"
#include "backend/cpu/gemm_blocking.h"
#include "core/dtype.h"

#if defined(__x86_64__)
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")
#endif

#include "backend/cpu/gemm_avx512_ops.h"
#include "backend/cpu/gemm_microkernel.h"

namespace zflow::cpu {

namespace {

constexpr GemmBlocking kB = kGemmBlockingAvx512;
static_assert(kB.nr % Avx512Ops::kWidth == 0);

const GemmKernel kKernel{
    GemmIsa::Avx512,
    kB,
    gemm_detail::micro_kernel<Avx512Ops, kB.mr, kB.nr / Avx512Ops::kWidth>,
    gemm_detail::pack_a<kB.mr>,
    gemm_detail::pack_b<Avx512Ops, kB.nr>,
};

}  // namespace

const GemmKernel* gemm_kernel_avx512() {
  return &kKernel;
}

}  // namespace zflow::cpu

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else  // not x86-64

namespace zflow::cpu {
const GemmKernel* gemm_kernel_avx512() {
  return nullptr;
}
}  // namespace zflow::cpu

#endif
