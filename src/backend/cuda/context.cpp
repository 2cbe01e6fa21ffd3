// Device 0's context: stream, memory pool, cuBLASLt handle and workspace.
#include <algorithm>
#include <cstdint>
#include <mutex>

#include "backend/cuda/context.h"
#include "core/error.h"

namespace zflow::cuda {
namespace {

// Hopper's cuBLASLt kernels want 32 MiB of workspace for their best algorithms.
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

Context* make_context() {
  auto* c = new Context;  // never deleted: see context.h
  int count = 0;
  ZF_CUDA(cudaGetDeviceCount(&count));
  ZF_CHECK(count > 0, "[cuda] no CUDA device is present");
  c->device = 0;
  ZF_CUDA(cudaSetDevice(c->device));
  cudaDeviceProp prop{};
  ZF_CUDA(cudaGetDeviceProperties(&prop, c->device));
  c->sm_count = prop.multiProcessorCount;
  c->compute_capability = prop.major * 10 + prop.minor;
  c->max_shared_per_block = prop.sharedMemPerBlockOptin;
  ZF_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  // Keep freed blocks in the pool instead of returning them at every synchronisation:
  // an op allocates its output on every call, so reuse is the common case.
  ZF_CUDA(cudaDeviceGetDefaultMemPool(&c->pool, c->device));
  uint64_t keep_all = UINT64_MAX;
  ZF_CUDA(cudaMemPoolSetAttribute(c->pool, cudaMemPoolAttrReleaseThreshold, &keep_all));
  check(cublasLtCreate(&c->lt), "cublasLtCreate");
  c->workspace_bytes = kWorkspaceBytes;
  ZF_CUDA(cudaMalloc(&c->workspace, c->workspace_bytes));
  return c;
}

}  // namespace

Context& context() {
  static std::once_flag once;
  static Context* ctx = nullptr;
  std::call_once(once, [] { ctx = make_context(); });
  return *ctx;
}

void check(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call does not see it
  fail("[cuda] {} failed: {} ({})", call, cudaGetErrorString(status), cudaGetErrorName(status));
}

void check(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail("[cuda] {} failed: {} ({})", call, cublasLtGetStatusString(status),
       cublasLtGetStatusName(status));
}

void check_launch(cudaError_t status, const char* kernel) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  fail("[cuda] launching {} failed: {} ({})", kernel, cudaGetErrorString(status),
       cudaGetErrorName(status));
}

FloatKind float_kind(DType t) {
  switch (t) {
    case DType::F32:
      return FloatKind::F32;
    case DType::BF16:
      return FloatKind::BF16;
    case DType::F16:
      return FloatKind::F16;
    default:
      fail("[cuda] expected an F32, BF16 or F16 tensor, got {}", dtype_name(t));
  }
}

Act act_of(const Tensor& t) {
  ZF_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::BF16,
           "[cuda] activations must be F32 or BF16, got {}", dtype_name(t.dtype()));
  return t.dtype() == DType::BF16 ? Act::BF16 : Act::F32;
}

WeightRef weight_ref(const Tensor& t) {
  if (!t.defined()) return {};
  return {t.raw(), float_kind(t.dtype())};
}

unsigned grid_for(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  // Enough blocks to fill every multiprocessor many times over; the kernels stride past it.
  const int64_t cap = int64_t{context().sm_count} * 32;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, cap));
}

}  // namespace zflow::cuda
