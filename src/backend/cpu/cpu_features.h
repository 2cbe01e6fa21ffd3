// What the processor this process runs on can execute, detected once at first use.
// Kernels with a choice of instruction sets (gemm, attention, conversions) ask here
// rather than trusting the compiler's flags: the library is built for baseline
// x86-64 and picks faster code paths at run time.
#pragma once

#include <string>

namespace zflow::cpu {

struct CpuFeatures {
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;         // vcvtph2ps: float16 to float32 in hardware
  bool avx512f = false;      // includes the operating system saving the zmm state
  bool avx512bw = false;     // 8- and 16-bit lanes (vpermw)
  bool avx512_bf16 = false;  // vdpbf16ps
  bool avx512_vnni = false;  // vpdpbusd
};

const CpuFeatures& cpu_features();

// One line for logs and benchmarks, e.g. "avx2 fma f16c avx512f".
std::string cpu_features_string();

}  // namespace zflow::cpu
