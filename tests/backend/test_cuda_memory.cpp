// GPU tensors: uploads and downloads (small ones straight, large ones through the pinned
// staging buffers), strided copies and dtype conversions on the device, the memory pool's
// reuse and statistics, and CUDA errors as zflow::Error. Exact comparisons: these are copies
// (and round-to-nearest-even conversions, as on the host). The CudaDevice tests at the end run
// on every machine: they check what a build or machine without a GPU says.
#include <cstring>
#include <random>

#include "backend/device.h"
#include "backend/ops.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "op_test_util.h"

namespace zflow {
namespace {

// A host tensor of `dtype` filled with random bytes (any bit pattern round-trips).
Tensor random_bytes(const Shape& shape, DType dtype, uint32_t seed) {
  Tensor t = Tensor::empty(shape, dtype);
  std::mt19937 gen(seed);
  auto* p = static_cast<uint8_t*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) p[i] = static_cast<uint8_t>(gen());
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

TEST(CudaMemory, UploadDownloadRoundTripsEveryDtypeAndSize) {
  ZF_REQUIRE_GPU();
  // 33 elements: below the staging threshold; 3.3M floats (13 MB): two 8 MiB pinned chunks,
  // the second partial.
  for (const int64_t n : {int64_t{33}, int64_t{3'300'001}}) {
    for (DType t : {DType::F32, DType::BF16, DType::F16, DType::I64, DType::U8}) {
      const Tensor host = random_bytes({n}, t, static_cast<uint32_t>(n) + static_cast<int>(t));
      const Tensor gpu = host.to(Device::CUDA);
      EXPECT_EQ(gpu.device(), Device::CUDA);
      EXPECT_EQ(gpu.dtype(), t);
      const Tensor back = gpu.to(Device::CPU);
      EXPECT_EQ(back.device(), Device::CPU);
      EXPECT_TRUE(same_bytes(host, back)) << dtype_name(t) << " n=" << n;
    }
  }
}

TEST(CudaMemory, StridedViewsBecomeContiguousOnTheDevice) {
  ZF_REQUIRE_GPU();
  const Tensor host = test::random_tensor({4, 5, 6, 7}, 1);
  const Tensor gpu = host.to(Device::CUDA);
  const Tensor permuted = gpu.permute({2, 0, 3, 1}).contiguous();
  EXPECT_EQ(permuted.device(), Device::CUDA);
  EXPECT_TRUE(same_bytes(permuted.to(Device::CPU), host.permute({2, 0, 3, 1}).contiguous()));
  const Tensor sliced = gpu.slice(1, 1, 4).select(3, 5).contiguous();
  EXPECT_TRUE(same_bytes(sliced.to(Device::CPU), host.slice(1, 1, 4).select(3, 5).contiguous()));
  // Uploading a strided host view and downloading a strided device view.
  EXPECT_TRUE(same_bytes(host.permute({3, 2, 1, 0}).to(Device::CUDA).to(Device::CPU),
                         host.permute({3, 2, 1, 0}).contiguous()));
  EXPECT_TRUE(same_bytes(gpu.permute({1, 0, 2, 3}).to(Device::CPU),
                         host.permute({1, 0, 2, 3}).contiguous()));
  // Same-dtype gathers of 1-, 2- and 8-byte elements.
  for (DType t : {DType::U8, DType::BF16, DType::I64}) {
    const Tensor h = random_bytes({3, 9, 5}, t, 7);
    EXPECT_TRUE(same_bytes(h.to(Device::CUDA).permute({2, 1, 0}).contiguous().to(Device::CPU),
                           h.permute({2, 1, 0}).contiguous()))
        << dtype_name(t);
  }
}

TEST(CudaMemory, DtypeConversionsOnTheDeviceRoundAsTheHost) {
  ZF_REQUIRE_GPU();
  // Values over a wide range, so rounding to bf16 / f16 (and f16 overflow) is exercised.
  const Tensor host = test::random_tensor({1000, 3}, 2, -70000.0f, 70000.0f);
  const Tensor small = test::random_tensor({1000, 3}, 3, -1e-3f, 1e-3f);
  for (const Tensor* h : {&host, &small}) {
    const Tensor gpu = h->to(Device::CUDA);
    for (DType t : {DType::BF16, DType::F16}) {
      EXPECT_TRUE(same_bytes(gpu.to(t).to(Device::CPU), h->to(t))) << dtype_name(t);
      // Widening back is exact.
      EXPECT_TRUE(same_bytes(gpu.to(t).to(DType::F32).to(Device::CPU), h->to(t).to(DType::F32)));
    }
    // A strided source converts too.
    EXPECT_TRUE(same_bytes(gpu.permute({1, 0}).to(DType::BF16).to(Device::CPU),
                           h->permute({1, 0}).contiguous().to(DType::BF16)));
  }
  // Across devices with a conversion: a GPU F32 tensor into a host BF16 one.
  Tensor dst = Tensor::empty({1000, 3}, DType::BF16);
  dst.copy_from(host.to(Device::CUDA));
  EXPECT_TRUE(same_bytes(dst, host.to(DType::BF16)));
  EXPECT_THROW(random_bytes({4}, DType::I64, 1).to(Device::CUDA).to(DType::I32), Error);
}

TEST(CudaMemory, ZerosAndClonesOnTheDevice) {
  ZF_REQUIRE_GPU();
  const Tensor z = Tensor::zeros({3, 1001}, DType::BF16, Device::CUDA);
  for (float v : z.to_f32_vector()) ASSERT_EQ(v, 0.0f);
  const Tensor x = test::random_tensor({7, 9}, 4).to(Device::CUDA);
  const Tensor c = x.clone();
  EXPECT_NE(c.raw(), x.raw());
  EXPECT_EQ(c.to_f32_vector(), x.to_f32_vector());
}

TEST(CudaMemory, PoolReusesFreedBlocksAndReportsPeaks) {
  ZF_REQUIRE_GPU();
  constexpr int64_t kFloats = int64_t{16} << 20;  // 64 MiB
  constexpr size_t kBytes = kFloats * sizeof(float);
  cuda_synchronize();
  const CudaMemoryStats before = cuda_memory_stats();
  { const Tensor a = Tensor::empty({kFloats}, DType::F32, Device::CUDA); }
  cuda_synchronize();
  const CudaMemoryStats after_free = cuda_memory_stats();
  EXPECT_EQ(after_free.in_use_bytes, before.in_use_bytes);
  EXPECT_GE(after_free.peak_in_use_bytes, before.in_use_bytes + kBytes);
  EXPECT_GE(after_free.reserved_bytes, kBytes);  // the block stays cached in the pool
  EXPECT_EQ(after_free.allocations, before.allocations + 1);
  {
    const Tensor b = Tensor::empty({kFloats}, DType::F32, Device::CUDA);
    const CudaMemoryStats during = cuda_memory_stats();
    EXPECT_EQ(during.reserved_bytes, after_free.reserved_bytes) << "the freed block was not reused";
    EXPECT_EQ(during.in_use_bytes, before.in_use_bytes + kBytes);
  }
  cuda_reset_peak_memory();
  EXPECT_EQ(cuda_memory_stats().peak_in_use_bytes, cuda_memory_stats().in_use_bytes);
  cuda_release_cached_memory();
  EXPECT_LT(cuda_memory_stats().reserved_bytes, after_free.reserved_bytes);
}

TEST(CudaMemory, CudaErrorsBecomeZflowErrors) {
  ZF_REQUIRE_GPU();
  try {
    Tensor::empty({int64_t{1} << 40}, DType::F32, Device::CUDA);  // 4 TiB
    FAIL() << "expected an out-of-memory error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[cuda] out of device memory: allocating 4398046511104"),
              std::string::npos)
        << e.what();
  }
  // The context is still usable afterwards.
  EXPECT_EQ(test::random_tensor({5}, 1).to(Device::CUDA).to_f32_vector(),
            test::random_tensor({5}, 1).to_f32_vector());
}

// The checks every machine can run: argument checks precede dispatch, and a CPU-only
// build refuses GPU tensors by name.
TEST(CudaDevice, DevicesAndStatsAreConsistentWithTheBuild) {
  const auto devices = cuda_devices();
  if (!built_with_cuda()) {
    EXPECT_TRUE(devices.empty());
    const CudaMemoryStats s = cuda_memory_stats();
    EXPECT_EQ(s.in_use_bytes + s.reserved_bytes + s.peak_in_use_bytes, 0u);
    try {
      test::random_tensor({3}, 1).to(Device::CUDA);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(),
                   "[tensor] a GPU allocation needs the CUDA backend, and this build has none "
                   "(configure with -DZFLOW_CUDA=ON)");
    }
    try {
      ops::silu(test::fake_cuda(test::random_tensor({3}, 1)));
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_STREQ(e.what(),
                   "[silu] got a GPU tensor, and this build has no CUDA backend (configure with "
                   "-DZFLOW_CUDA=ON)");
    }
  }
  for (const CudaDeviceInfo& d : devices) {
    EXPECT_FALSE(d.name.empty());
    EXPECT_GT(d.memory_bytes, 0u);
  }
}

TEST(CudaDevice, ActivationDtypeRulesAreCheckedBeforeDispatch) {
  const Tensor x = test::random_tensor({2, 8}, 1);
  const Tensor gpu_f16 = test::fake_cuda(x.to(DType::F16));
  const Tensor gpu_bf16 = test::fake_cuda(x.to(DType::BF16));
  const Tensor gpu_f32 = test::fake_cuda(x);
  auto message = [](const auto& fn) {
    try {
      fn();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message([&] { ops::silu(gpu_f16); }),
            "[silu] x must be F32 or BF16 (activations on the GPU), got F16 [2, 8]");
  EXPECT_EQ(message([&] { ops::add(gpu_f32, gpu_bf16); }),
            "[add] b is BF16 but the other activations are F32");
  EXPECT_EQ(message([&] { ops::add(x, gpu_f32); }),
            "[add] inputs are on different devices (cpu and cuda); move them with "
            "Tensor::to(Device)");
  EXPECT_EQ(message([&] { ops::silu(x.to(DType::BF16)); }),
            "[silu] x must be F32 (activations on the CPU are float32), got BF16 [2, 8]");
  EXPECT_EQ(message([&] { ops::embedding(x, std::vector<int32_t>{1}, DType::BF16); }),
            "[embedding] output dtype BF16 asked for; the CPU makes F32, the GPU F32 or BF16");
}

}  // namespace
}  // namespace zflow
