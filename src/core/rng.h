// Random numbers that match PyTorch's CPU generator bit for bit, so a seed gives the same
// starting noise (and VAE posterior sample) as a diffusers pipeline run with
// torch.Generator("cpu").manual_seed(seed).
//
// What torch does (PyTorch 2.x, aten/src/ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp,
// core/DistributionsHelper.h, native/cpu/DistributionTemplates.h):
//  - The engine is the standard 32-bit mt19937, seeded with the LOW 32 bits of the 64-bit seed
//    only: seeds 5 and 5 + 2^32 give identical streams.
//  - randn of fewer than 16 elements (or a non-contiguous tensor) draws each value from a
//    double Box-Muller: u1, u2 from 53-bit uniforms (two 32-bit draws each, first draw high),
//    returns r*cos and caches r*sin in the generator. The cache outlives the call: the next
//    scalar-path draw uses it first. manual_seed clears it.
//  - randn of 16 or more elements fills the output with 24-bit float uniforms, runs a float
//    Box-Muller over each block of 16 (first 8 give log radii, last 8 angles), and when n is
//    not a multiple of 16 draws 16 fresh uniforms and recomputes the last 16 outputs. So it
//    consumes n (+16 when n % 16 != 0) engine draws; the n % 16 leftover uniforms are wasted.
//    (torch's bf16/f16 randn skips those leftovers, so for n % 16 != 0 it is NOT the bf16
//    rounding of the float32 result; for n % 16 == 0, e.g. 16-channel latents, it is.)
//  - The float Box-Muller's log, sin and cos depend on the CPU kernel torch dispatches to:
//    the AVX2 kernel uses Cephes polynomials (avx_mathfun.h, with the compiler's FMA
//    contraction), every other kernel (DEFAULT, AVX512) calls libm's logf/sinf/cosf. The two
//    differ in the last bits of about 40% of the values, so torch.randn itself gives
//    different bits on an AVX2 machine and on an AVX512 one. NormalMath names the variant.
#pragma once

#include <cstdint>
#include <optional>

#include "core/mt19937.h"
#include "core/tensor.h"

namespace zflow {

// Which float log/sin/cos torch's vectorised normal kernel used on the machine being matched.
enum class NormalMath : uint8_t {
  Avx2Cephes,  // torch on a CPU with AVX2 but not AVX512 (ATEN_CPU_CAPABILITY=avx2)
  Libm,        // torch with ATEN_CPU_CAPABILITY=default or avx512 (glibc logf/sinf/cosf)
};

// The variant torch would pick on this CPU (AVX512 VL/BW/DQ + FMA -> Libm, AVX2 + FMA ->
// Avx2Cephes, otherwise Libm), honouring ATEN_CPU_CAPABILITY as torch does.
NormalMath torch_normal_math_for_this_cpu();

// torch's default seed for a fresh generator (c10::default_rng_seed_val).
inline constexpr uint64_t kTorchDefaultSeed = 67280421310721ULL;

// One stream, like a torch.Generator: not thread-safe; give each job its own.
class Generator {
 public:
  explicit Generator(uint64_t seed = kTorchDefaultSeed, NormalMath math = NormalMath::Avx2Cephes);

  // torch.Generator.manual_seed: restarts the stream and forgets the cached normal.
  void manual_seed(uint64_t seed);
  uint64_t initial_seed() const { return seed_; }
  NormalMath normal_math() const { return math_; }

  uint32_t random();    // next raw 32-bit engine output
  uint64_t random64();  // two draws, the first in the high half

  // torch.randn(n, generator=g) into out[0..n), continuing this generator's stream.
  void randn(float* out, int64_t n);
  // torch.randn(shape, generator=g) as a new contiguous float32 tensor.
  Tensor randn(const Shape& shape);

 private:
  double scalar_normal();
  void normal_fill(float* out, int64_t n);

  uint64_t seed_ = 0;
  NormalMath math_;
  Mt19937 engine_;
  std::optional<double> cached_normal_;
};

// torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed)).
Tensor randn(const Shape& shape, uint64_t seed, NormalMath math = NormalMath::Avx2Cephes);

}  // namespace zflow
