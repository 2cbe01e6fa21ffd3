#include "backend/cpu/gemm.h"

namespace zflow::cpu {

// Placeholder until the blocked kernels land: correct, slow.
void gemm(const GemmArgs& args) { gemm_reference(args); }

}  // namespace zflow::cpu
