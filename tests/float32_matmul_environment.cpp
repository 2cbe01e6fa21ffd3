// Every test runs with float32 CPU matmuls unless it asks otherwise: the golden fixtures hold
// float32 results of the reference implementations, and their tolerances are set for float32
// arithmetic. Tests of the bfloat16 path set MatmulPrecision::Bfloat16 themselves, through
// test_util.h's ScopedMatmulPrecision, with tolerances stated for bfloat16 rounding.
#include <gtest/gtest.h>

#include "backend/cpu/gemm.h"

namespace {

class Float32Matmuls : public ::testing::Environment {
 public:
  void SetUp() override { zflow::cpu::set_matmul_precision(zflow::cpu::MatmulPrecision::Float32); }
};

// gtest_main runs the environments registered before it; a static initialiser registers this one.
[[maybe_unused]] ::testing::Environment* const kFloat32Matmuls =
    ::testing::AddGlobalTestEnvironment(new Float32Matmuls);

}  // namespace
