// Helpers for the GPU tests: skip without a GPU, and compare a CUDA op with the CPU op
// (which is itself tested against plain references).
//
// Tolerances, relative to the output's scale (max |got - want| / max |want|):
//   F32 activations: 1e-5. Both sides compute in float32; what differs is summation order
//     (GEMM, attention, reductions: ~sqrt(K) ulp for K-term sums, below 1e-6 at our sizes)
//     and the last ulp or two of expf/tanhf/erff. TF32 (10-bit mantissa, ~1e-3) would fail.
//   BF16 activations, against the CPU result on the unrounded float32 inputs: cosine
//     similarity >= 0.999 (the agreement the brief asks of a bf16 path), and max error
//     <= 5e-2 of scale so that a few wrong elements cannot hide in a good cosine. bf16 keeps
//     8 significant bits: each rounding (inputs, output) costs up to 2^-9 = 0.2%, and the ops
//     amplify input rounding by at most ~10x at our input ranges (exp of |x| <= 3, norms).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "backend/device.h"
#include "core/tensor.h"

namespace zflow::test {

#define ZF_REQUIRE_GPU()                                                                  \
  do {                                                                                    \
    if (::zflow::cuda_devices().empty())                                                  \
      GTEST_SKIP() << (::zflow::built_with_cuda()                                         \
                           ? "no CUDA device on this machine: GPU test skipped"           \
                           : "CPU-only build (configure with -DZFLOW_CUDA=ON): GPU test " \
                             "skipped");                                                  \
  } while (0)

constexpr double kGpuF32Tol = 1e-5;
constexpr double kGpuBf16MinCosine = 0.999;
constexpr double kGpuBf16MaxErr = 5e-2;

struct Comparison {
  double max_err = 0.0;  // relative to the scale of `want`
  double cosine = 0.0;
};

inline Comparison compare(const std::vector<float>& got, const std::vector<float>& want) {
  Comparison c;
  double err = 0.0, scale = 0.0, dot = 0.0, gg = 0.0, ww = 0.0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    const double g = got[i], w = want[i];
    err = std::max(err, std::abs(g - w));
    scale = std::max(scale, std::abs(w));
    dot += g * w;
    gg += g * g;
    ww += w * w;
  }
  c.max_err = scale > 0.0 ? err / scale : err;
  c.cosine = gg > 0.0 && ww > 0.0 ? dot / std::sqrt(gg * ww) : (gg == ww ? 1.0 : 0.0);
  return c;
}

// `got` (a GPU tensor with activations of `act`) against `want` (the CPU op's float32 result).
inline void expect_matches_cpu(const Tensor& got, const Tensor& want, DType act,
                               const std::string& what, double f32_tol = kGpuF32Tol) {
  ASSERT_EQ(got.device(), Device::CUDA) << what;
  EXPECT_EQ(got.dtype(), act) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const Comparison c = compare(got.to_f32_vector(), want.to_f32_vector());
  for (float v : got.to_f32_vector()) {
    if (!std::isfinite(v)) {
      ADD_FAILURE() << what << ": non-finite output";
      break;
    }
  }
  if (act == DType::F32) {
    EXPECT_LE(c.max_err, f32_tol) << what;
  } else {
    EXPECT_GE(c.cosine, kGpuBf16MinCosine) << what;
    EXPECT_LE(c.max_err, kGpuBf16MaxErr) << what;
  }
}

// One input of an op under test: activations are sent to the GPU in the activation dtype
// under test, weights in their own dtype.
struct OpArg {
  Tensor host;
  bool activation = true;
};

// Runs `op` on the CPU inputs and on their GPU copies, with F32 and with BF16 activations,
// and compares each GPU result with the CPU one.
inline void compare_with_cpu(const std::string& what, const std::vector<OpArg>& args,
                             const std::function<Tensor(const std::vector<Tensor>&)>& op,
                             double f32_tol = kGpuF32Tol) {
  std::vector<Tensor> cpu;
  for (const OpArg& a : args) cpu.push_back(a.host);
  const Tensor want = op(cpu);
  for (DType act : {DType::F32, DType::BF16}) {
    std::vector<Tensor> gpu;
    for (const OpArg& a : args)
      gpu.push_back((a.activation ? a.host.to(act) : a.host).to(Device::CUDA));
    expect_matches_cpu(op(gpu), want, act, what + (act == DType::F32 ? " (F32)" : " (BF16)"),
                       f32_tol);
  }
}

}  // namespace zflow::test
