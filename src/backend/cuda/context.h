// The per-device state every CUDA op uses: one stream that orders all GPU work (kernels,
// copies, stream-ordered allocations and frees), a cuBLASLt handle with its workspace,
// and the device's properties. Made on first use and kept for the life of the process
// (tensors freed during exit still return their memory through it).
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>

#include "backend/cuda/launch.h"
#include "core/tensor.h"

namespace zflow::cuda {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaMemPool_t pool = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;  // cuBLASLt scratch, used by one matmul at a time on `stream`
  size_t workspace_bytes = 0;
  int sm_count = 0;
  int compute_capability = 0;       // major * 10 + minor: 89 (Ada) and up have FP8 tensor cores
  size_t max_shared_per_block = 0;  // with the opt-in attribute (cudaFuncSetAttribute)
};

// The context of device 0; throws zflow::Error if there is no usable GPU.
Context& context();

// Throws zflow::Error "[cuda] <call> failed: <error string> (<error name>)".
void check(cudaError_t status, const char* call);
void check(cublasStatus_t status, const char* call);
// A launcher's status (launch.h): a launch error (bad configuration, no kernel image for
// this GPU) becomes zflow::Error naming the kernel.
void check_launch(cudaError_t status, const char* kernel);

// A small host array of int32 uploaded for one kernel (ids, key lengths).
Tensor upload_i32(const int32_t* values, int64_t n);

// The storage type of a GPU activation (F32 or BF16, checked by ops.cpp).
Act act_of(const Tensor& t);
// The WeightRef of a contiguous GPU tensor of F32, BF16 or F16 (undefined -> absent).
WeightRef weight_ref(const Tensor& t);
FloatKind float_kind(DType t);

}  // namespace zflow::cuda

#define ZF_CUDA(call) ::zflow::cuda::check((call), #call)
