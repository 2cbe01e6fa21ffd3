// Every CUDA op against the CPU op on the same random inputs, with F32 and with BF16
// activations (tolerances and why: cuda_test_util.h). Shapes are odd on purpose (33, 77,
// 129, 257 ...): they straddle warp, vector and tile widths, leave partial tiles, and make
// the elementwise kernels take both their 16-byte and their single-element paths.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "backend/device.h"
#include "backend/ops.h"
#include "core/error.h"
#include "cuda_test_util.h"
#include "io/safetensors.h"
#include "op_test_util.h"
#include "test_util.h"

namespace zflow {
namespace {

using test::compare_with_cpu;
using test::OpArg;
using test::random_tensor;
using Args = std::vector<Tensor>;

OpArg weight(Tensor t) {
  return {std::move(t), false};
}

TEST(CudaOps, Elementwise) {
  ZF_REQUIRE_GPU();
  const Tensor a = random_tensor({3, 77, 129}, 1, -3.0f, 3.0f);
  const Tensor b = random_tensor({3, 77, 129}, 2, -3.0f, 3.0f);
  compare_with_cpu("silu", {{a}}, [](const Args& x) { return ops::silu(x[0]); });
  compare_with_cpu("exp", {{a}}, [](const Args& x) { return ops::exp(x[0]); });
  compare_with_cpu("tanh", {{a}}, [](const Args& x) { return ops::tanh(x[0]); });
  for (auto kind : {ops::GeluKind::kErf, ops::GeluKind::kTanh, ops::GeluKind::kQuick})
    compare_with_cpu("gelu " + std::to_string(static_cast<int>(kind)), {{a}},
                     [kind](const Args& x) { return ops::gelu(x[0], kind); });
  compare_with_cpu("add", {{a}, {b}}, [](const Args& x) { return ops::add(x[0], x[1]); });
  compare_with_cpu("mul", {{a}, {b}}, [](const Args& x) { return ops::mul(x[0], x[1]); });
  compare_with_cpu("silu_mul", {{a}, {b}}, [](const Args& x) { return ops::silu_mul(x[0], x[1]); });
  compare_with_cpu("mul_scalar", {{a}}, [](const Args& x) { return ops::mul_scalar(x[0], -1.7f); });
  compare_with_cpu("add_scalar", {{a}}, [](const Args& x) { return ops::add_scalar(x[0], 0.3f); });
  compare_with_cpu("clamp", {{a}}, [](const Args& x) { return ops::clamp(x[0], -1.0f, 2.0f); });
  compare_with_cpu("leaky_relu", {{a}}, [](const Args& x) { return ops::leaky_relu(x[0], 0.2f); });
  compare_with_cpu("prelu", {{a}, weight(random_tensor({77}, 3, -0.5f, 0.5f).to(DType::BF16))},
                   [](const Args& x) { return ops::prelu(x[0], x[1]); });
  // A contiguous slice starting 77 * 129 elements in (not a multiple of 16 bytes in either
  // dtype) takes the unaligned path; a strided view is made contiguous first.
  compare_with_cpu("silu on an unaligned slice", {{a}},
                   [](const Args& x) { return ops::silu(x[0].slice(0, 1, 3)); });
  compare_with_cpu("mul on unaligned slices", {{a}, {b}}, [](const Args& x) {
    return ops::mul(x[0].slice(0, 1, 3), x[1].slice(0, 1, 3));
  });
  compare_with_cpu("add on permuted views", {{a}, {b}}, [](const Args& x) {
    return ops::add(x[0].permute({2, 0, 1}), x[1].permute({2, 0, 1}));
  });
}

TEST(CudaOps, LinearWithEveryWeightDtype) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 37, 300}, 3);
  for (DType wt : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor w = random_tensor({257, 300}, 4).to(wt);
    const Tensor b = random_tensor({257}, 5).to(wt);
    const std::string name = std::string("linear w ") + std::string(dtype_name(wt));
    compare_with_cpu(name, {{x}, weight(w), weight(b)},
                     [](const Args& a) { return ops::linear(a[0], a[1], a[2]); });
    compare_with_cpu(name + " no bias", {{x}, weight(w)},
                     [](const Args& a) { return ops::linear(a[0], a[1]); });
  }
  // A Flux-sized hidden dim (K = 3072): the fp32 path must not fall back to TF32.
  const Tensor xl = random_tensor({64, 3072}, 6);
  const Tensor wl = random_tensor({128, 3072}, 7);
  compare_with_cpu("linear K=3072", {{xl}, weight(wl)},
                   [](const Args& a) { return ops::linear(a[0], a[1]); });
  // One row, and an input that is a strided view.
  compare_with_cpu("linear M=1", {{random_tensor({1, 300}, 8)}, weight(random_tensor({5, 300}, 9))},
                   [](const Args& a) { return ops::linear(a[0], a[1]); });
  compare_with_cpu("linear on a transposed view",
                   {{random_tensor({300, 11}, 10)}, weight(random_tensor({33, 300}, 11))},
                   [](const Args& a) {
                     return ops::linear(a[0].permute({1, 0}), a[1]);
                   });
}

// Scaled float8 weights. Shapes that are not multiples of 16, e5m2, and F32 activations widen
// the weight to the activation dtype (the usual tolerances). BF16 activations with an e4m3
// weight of K, N multiples of 16 take cuBLASLt's FP8 matmul on sm_89+, the activations
// quantised to e4m3 per tensor: each keeps 3 mantissa bits (rounding error up to 2^-4 of its
// value, about 2% rms for uniform inputs), and over K = 320 random-sign products the output
// error stays near that rms: held to cosine >= 0.998 and max error <= 0.1 of the output scale.
// (Below sm_89 the same call widens to bf16 and meets the bound with room.)
TEST(CudaOps, LinearWithScaledFloat8Weights) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 37, 300}, 12);
  for (DType wt : {DType::F8_E4M3, DType::F8_E5M2}) {
    const Tensor w = random_tensor({257, 300}, 13).to(wt).with_scale(0.043f);
    const Tensor b = random_tensor({257}, 14);
    compare_with_cpu(std::string("linear w scaled ") + std::string(dtype_name(wt)),
                     {{x}, weight(w), weight(b)},
                     [](const Args& a) { return ops::linear(a[0], a[1], a[2]); });
  }
  const Tensor xs = random_tensor({3, 41, 320}, 15);
  const Tensor w8 = random_tensor({256, 320}, 16).to(DType::F8_E4M3).with_scale(0.021f);
  const Tensor b8 = random_tensor({256}, 17);
  compare_with_cpu("linear e4m3 K=320 N=256 (F32: widened)", {{xs}, weight(w8), weight(b8)},
                   [](const Args& a) { return ops::linear(a[0], a[1], a[2]); });
  const Tensor want = ops::linear(xs, w8, b8);
  const Tensor got =
      ops::linear(xs.to(DType::BF16).to(Device::CUDA), w8.to(Device::CUDA), b8.to(Device::CUDA));
  ASSERT_EQ(got.dtype(), DType::BF16);
  const test::Comparison c = test::compare(got.to_f32_vector(), want.to_f32_vector());
  EXPECT_GE(c.cosine, 0.998);
  EXPECT_LE(c.max_err, 0.1);
  RecordProperty("fp8 matmul cosine", std::to_string(c.cosine));
  RecordProperty("fp8 matmul max error", std::to_string(c.max_err));
}

constexpr DType kBlockTypes[] = {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0,
                                 DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};

// GGML blocks dequantised on the device equal gguf-py's float32 values bit for bit: the random
// blocks of tools/golden/make_gguf.py, as rows of a matrix (so the row arithmetic of the kernel
// is exercised) converted to F32 on the GPU; and to BF16, equal to those values rounded.
TEST(CudaOps, DequantisesEveryBlockTypeAsGgufPy) {
  ZF_REQUIRE_GPU();
  const io::SafetensorsFile f =
      io::SafetensorsFile::open(test::fixture("gguf/gguf_blocks_every_type_values.safetensors"));
  for (DType type : kBlockTypes) {
    const std::string name(dtype_name(type));
    const Tensor bytes = f.tensor(name + ".random_blocks");
    const Tensor values = f.tensor(name + ".random_values");
    const int64_t per_row = 2 * dtype_block_size(type);
    ASSERT_EQ(values.numel() % per_row, 0) << name;
    Tensor blocks = Tensor::empty({values.numel() / per_row, per_row}, type);
    ASSERT_EQ(blocks.nbytes(), bytes.nbytes()) << name;
    std::memcpy(blocks.raw(), bytes.raw(), bytes.nbytes());
    const Tensor on_gpu = blocks.to(Device::CUDA);
    const std::vector<float> want = values.to_f32_vector();
    const std::vector<float> got = on_gpu.to(DType::F32).to_f32_vector();
    ASSERT_EQ(got.size(), want.size()) << name;
    EXPECT_EQ(std::memcmp(got.data(), want.data(), 4 * want.size()), 0) << name << " F32";
    const std::vector<float> got_bf16 = on_gpu.to(DType::BF16).to_f32_vector();
    const std::vector<float> want_bf16 = values.to(DType::BF16).to_f32_vector();
    EXPECT_EQ(std::memcmp(got_bf16.data(), want_bf16.data(), 4 * want.size()), 0)
        << name << " BF16";
  }
}

// A block-quantised weight stays quantised on the device and is dequantised for its GEMM; the
// CPU computes with the same values, so only the GEMM's rounding differs. Embedding tables of
// block types return their dequantised rows.
TEST(CudaOps, LinearAndEmbeddingWithBlockQuantisedWeights) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 19, 512}, 18);
  for (DType type : {DType::Q8_0, DType::Q4_0, DType::Q5_1, DType::Q4_K, DType::Q6_K}) {
    const std::string name(dtype_name(type));
    const Tensor w = random_tensor({129, 512}, 19).to(type);
    const Tensor b = random_tensor({129}, 20);
    compare_with_cpu("linear w " + name, {{x}, weight(w), weight(b)},
                     [](const Args& a) { return ops::linear(a[0], a[1], a[2]); });
    const std::vector<int32_t> ids = {5, 0, 128, 64, 64};
    const Tensor want = ops::embedding(w, ids);
    test::expect_matches_cpu(ops::embedding(w.to(Device::CUDA), ids), want, DType::F32,
                             "embedding " + name, 0.0);  // the same float32 values
  }
}

TEST(CudaOps, BatchedMatmul) {
  ZF_REQUIRE_GPU();
  const Tensor a = random_tensor({2, 3, 45, 67}, 12);
  const Tensor b = random_tensor({2, 3, 67, 29}, 13);
  compare_with_cpu("matmul", {{a}, {b}}, [](const Args& x) { return ops::matmul(x[0], x[1]); });
  compare_with_cpu("matmul, b a stored F16 weight", {{a}, weight(b.to(DType::F16))},
                   [](const Args& x) { return ops::matmul(x[0], x[1]); });
  compare_with_cpu("matmul 2-D", {{random_tensor({130, 64}, 14)}, {random_tensor({64, 96}, 15)}},
                   [](const Args& x) { return ops::matmul(x[0], x[1]); });
}

TEST(CudaOps, SoftmaxOverShortAndLongRows) {
  ZF_REQUIRE_GPU();
  // Inputs within +-4: rounding them to bf16 (half an ulp = 2^-6 at 4) alone moves the
  // largest outputs by up to 1.6%, well inside the bf16 bound.
  for (int64_t d : {1, 33, 128, 129, 1000, 4099}) {
    const Tensor x = random_tensor({5, 7, d}, static_cast<uint32_t>(d), -4.0f, 4.0f);
    compare_with_cpu("softmax d=" + std::to_string(d), {{x}},
                     [](const Args& a) { return ops::softmax(a[0]); });
  }
}

TEST(CudaOps, RmsNormAndLayerNorm) {
  ZF_REQUIRE_GPU();
  for (int64_t d : {33, 128, 3840}) {
    const Tensor x = random_tensor({3, 11, d}, static_cast<uint32_t>(d), -3.0f, 3.0f);
    const Tensor shifted = random_tensor({3, 11, d}, static_cast<uint32_t>(d) + 1, 1.0f, 4.0f);
    for (DType wt : {DType::F32, DType::BF16, DType::F16}) {
      const Tensor w = random_tensor({d}, 20, 0.5f, 1.5f).to(wt);
      const Tensor bias = random_tensor({d}, 21).to(wt);
      const std::string tag = " d=" + std::to_string(d) + " w " + std::string(dtype_name(wt));
      compare_with_cpu("rms_norm" + tag, {{x}, weight(w)},
                       [](const Args& a) { return ops::rms_norm(a[0], a[1], 1e-6f); });
      compare_with_cpu("layer_norm" + tag, {{shifted}, weight(w), weight(bias)},
                       [](const Args& a) { return ops::layer_norm(a[0], a[1], a[2], 1e-6f); });
    }
    compare_with_cpu("rms_norm no weight", {{x}},
                     [](const Args& a) { return ops::rms_norm(a[0], {}, 1e-5f); });
    compare_with_cpu("layer_norm no affine", {{shifted}},
                     [](const Args& a) { return ops::layer_norm(a[0], {}, {}, 1e-5f); });
  }
}

// cos and sin of random angles, [table_batch, len, pairs].
std::pair<Tensor, Tensor> rope_tables(int64_t table_batch, int64_t len, int64_t pairs,
                                      uint32_t seed) {
  const Tensor angles = random_tensor({table_batch, len, pairs}, seed, -6.0f, 6.0f);
  std::vector<float> c, s;
  for (float v : angles.to_f32_vector()) {
    c.push_back(std::cos(v));
    s.push_back(std::sin(v));
  }
  return {Tensor::from_f32(angles.shape(), c), Tensor::from_f32(angles.shape(), s)};
}

TEST(CudaOps, RopeBothLayoutsAndTables) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 17, 3, 64}, 30, -2.0f, 2.0f);
  for (int64_t table_batch : {1, 2}) {
    const auto [cos, sin] = rope_tables(table_batch, 17, 32, 31);
    for (auto layout : {ops::RopeLayout::kInterleaved, ops::RopeLayout::kHalfSplit})
      compare_with_cpu("rope", {{x}, weight(cos), weight(sin)},
                       [layout](const Args& a) { return ops::rope(a[0], a[1], a[2], layout); });
  }
}

TEST(CudaOps, FusedNorms) {
  ZF_REQUIRE_GPU();
  // Z-Image's 3840 features a token, and an odd width.
  for (int64_t d : {33, 3840}) {
    const uint32_t seed = static_cast<uint32_t>(d);
    const Tensor x = random_tensor({2, 9, d}, seed, -3.0f, 3.0f);
    const Tensor r = random_tensor({2, 9, d}, seed + 1, -3.0f, 3.0f);
    const Tensor w = random_tensor({d}, seed + 2, 0.5f, 1.5f).to(DType::BF16);
    const Tensor shift = random_tensor({2, d}, seed + 3), scale = random_tensor({2, d}, seed + 4),
                 gate = random_tensor({2, d}, seed + 5);
    const std::string tag = " d=" + std::to_string(d);
    compare_with_cpu(
        "rms_norm_modulate" + tag, {{x}, weight(w), {shift}, {scale}},
        [](const Args& a) { return ops::rms_norm_modulate(a[0], a[1], 1e-6f, a[2], a[3]); });
    compare_with_cpu(
        "rms_norm_modulate without shift" + tag, {{x}, weight(w), {scale}},
        [](const Args& a) { return ops::rms_norm_modulate(a[0], a[1], 1e-6f, {}, a[2]); });
    compare_with_cpu("layer_norm_modulate" + tag, {{x}, {shift}, {scale}}, [](const Args& a) {
      return ops::layer_norm_modulate(a[0], 1e-6f, a[1], a[2]);
    });
    compare_with_cpu("add_gated_rms_norm" + tag, {{x}, {gate}, {r}, weight(w)}, [](const Args& a) {
      return ops::add_gated_rms_norm(a[0], a[1], a[2], a[3], 1e-6f);
    });
    compare_with_cpu(
        "add_gated_rms_norm without gate" + tag, {{x}, {r}, weight(w)},
        [](const Args& a) { return ops::add_gated_rms_norm(a[0], {}, a[1], a[2], 1e-6f); });
  }
  // QK-norm + RoPE over heads of 128 (Z-Image, FLUX, Qwen3), 96 (pairs not a multiple of the
  // warp) and 64.
  for (int64_t hd : {64, 96, 128}) {
    const Tensor x = random_tensor({2, 17, 3, hd}, 80, -3.0f, 3.0f);
    const Tensor w = random_tensor({hd}, 81, 0.5f, 1.5f).to(DType::BF16);
    for (int64_t table_batch : {1, 2}) {
      const auto [cos, sin] = rope_tables(table_batch, 17, hd / 2, 82);
      for (auto layout : {ops::RopeLayout::kInterleaved, ops::RopeLayout::kHalfSplit}) {
        compare_with_cpu("rms_norm_rope hd=" + std::to_string(hd),
                         {{x}, weight(w), weight(cos), weight(sin)}, [layout](const Args& a) {
                           return ops::rms_norm_rope(a[0], a[1], 1e-6f, a[2], a[3], layout);
                         });
        compare_with_cpu("rms_norm_rope without weight", {{x}, weight(cos), weight(sin)},
                         [layout](const Args& a) {
                           return ops::rms_norm_rope(a[0], {}, 1e-6f, a[1], a[2], layout);
                         });
      }
    }
  }
}

TEST(CudaOps, EmbeddingInBothOutputDtypes) {
  ZF_REQUIRE_GPU();
  const std::vector<int32_t> ids = {3, 0, 99, 42, 42, 7};
  for (DType wt : {DType::F32, DType::BF16, DType::F16}) {
    const Tensor table = random_tensor({100, 48}, 40).to(wt);
    const Tensor want = ops::embedding(table, ids);
    const Tensor gpu_table = table.to(Device::CUDA);
    test::expect_matches_cpu(ops::embedding(gpu_table, ids), want, DType::F32, "embedding F32",
                             0.0);  // a copy: exact
    test::expect_matches_cpu(ops::embedding(gpu_table, ids, DType::BF16), want, DType::BF16,
                             "embedding BF16");
  }
}

TEST(CudaOps, AddGatedAndConcat) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 37, 96}, 50), r = random_tensor({2, 37, 96}, 51);
  const Tensor v = random_tensor({2, 96}, 52);
  compare_with_cpu("add_gated", {{x}, {v}, {r}},
                   [](const Args& a) { return ops::add_gated(a[0], a[1], a[2]); });
  // Every dim, with a strided (permuted) part; along dim 0 the output is one copy per part.
  const Tensor a = random_tensor({3, 5, 7}, 56);
  const Tensor b = random_tensor({3, 7, 5}, 57);
  for (int dim = 0; dim < 3; ++dim)
    compare_with_cpu(fmt::format("concat dim {}", dim), {{a}, {b}}, [dim](const Args& t) {
      return ops::concat({t[0], t[1].permute({0, 2, 1}), t[0]}, dim);
    });
  // Z-Image's unified sequence: [image ; caption] along the tokens.
  const Tensor img = random_tensor({2, 64, 48}, 58), cap = random_tensor({2, 33, 48}, 59);
  compare_with_cpu("concat tokens", {{img}, {cap}}, [](const Args& t) {
    return ops::concat({t[0], t[1]}, 1);
  });
}

TEST(CudaOps, PatchifyUnpatchifyFillRows) {
  ZF_REQUIRE_GPU();
  const Tensor latents = random_tensor({2, 16, 6, 10}, 62);  // 3 x 5 = 15 tokens of 64
  compare_with_cpu("patchify", {{latents}},
                   [](const Args& a) { return ops::patchify(a[0], 2, 32); });
  const Tensor tokens = random_tensor({2, 32, 64}, 63);
  compare_with_cpu("unpatchify", {{tokens}},
                   [](const Args& a) { return ops::unpatchify(a[0], 16, 6, 10, 2); });
  compare_with_cpu("patchify odd patch", {{random_tensor({1, 5, 9, 6}, 64)}},
                   [](const Args& a) { return ops::patchify(a[0], 3, 7); });
  const Tensor x = random_tensor({3, 40, 24}, 65), row = random_tensor({24}, 66);
  const std::vector<int64_t> begin = {15, 0, 40}, end = {32, 40, 40};
  compare_with_cpu("fill_rows with a row", {{x}, {row}},
                   [&](const Args& a) { return ops::fill_rows(a[0], a[1], begin, end); });
  compare_with_cpu("fill_rows with zeros", {{x}},
                   [&](const Args& a) { return ops::fill_rows(a[0], Tensor{}, begin, end); });
}

// Head dims above the flash kernel's 256 (the autoencoder's one 512-wide head) take the
// unfused path: float32 scores in chunks, softmax, P V. Masks are refused there by name.
TEST(CudaOps, WideHeadAttentionFallsBackToMatmuls) {
  ZF_REQUIRE_GPU();
  const Tensor q = random_tensor({2, 1, 77, 512}, 67, -2.0f, 2.0f);
  const Tensor k = random_tensor({2, 1, 130, 512}, 68, -2.0f, 2.0f);
  const Tensor v = random_tensor({2, 1, 130, 512}, 69);
  const float scale = 1.0f / std::sqrt(512.0f);
  compare_with_cpu("attention d 512", {{q}, {k}, {v}},
                   [&](const Args& a) { return ops::attention(a[0], a[1], a[2], scale); });
  ops::AttentionMask causal;
  causal.causal = true;
  const Tensor qg = q.to(Device::CUDA);
  EXPECT_THROW(ops::attention(qg, qg, qg, scale, causal), Error);
}

struct AttentionCase {
  int64_t batch, heads, kv_heads, lq, lk, d, dv;
  bool causal;
  std::vector<int64_t> key_lengths;
};

TEST(CudaOps, FlashAttentionAgainstTheCpuKernel) {
  ZF_REQUIRE_GPU();
  const std::vector<AttentionCase> cases = {
      {2, 4, 2, 77, 113, 64, 64, false, {}},           // GQA, partial tiles
      {1, 3, 3, 200, 200, 128, 128, true, {}},         // causal, Z-Image/FLUX head dim
      {2, 2, 1, 65, 130, 128, 128, false, {50, 130}},  // per-sample key lengths
      {2, 2, 2, 96, 96, 64, 64, true, {40, 96}},       // causal and key lengths together
      {1, 2, 2, 33, 47, 40, 24, false, {}},            // head dims below a tile width, Dv != D
      {1, 1, 1, 1, 300, 256, 256, false, {}},          // one query, the widest head
      {1, 2, 2, 1100, 1100, 128, 128, false, {}},      // many key tiles
  };
  for (const AttentionCase& c : cases) {
    const uint32_t seed = static_cast<uint32_t>(c.lq * 7 + c.d);
    const Tensor q = random_tensor({c.batch, c.heads, c.lq, c.d}, seed, -2.0f, 2.0f);
    const Tensor k = random_tensor({c.batch, c.kv_heads, c.lk, c.d}, seed + 1, -2.0f, 2.0f);
    const Tensor v = random_tensor({c.batch, c.kv_heads, c.lk, c.dv}, seed + 2);
    ops::AttentionMask mask;
    mask.causal = c.causal;
    mask.key_lengths = c.key_lengths;
    const float scale = 1.0f / std::sqrt(static_cast<float>(c.d));
    compare_with_cpu(fmt::format("attention lq {} lk {} d {} causal {} lengths {}", c.lq, c.lk, c.d,
                                 c.causal, c.key_lengths.size()),
                     {{q}, {k}, {v}},
                     [&](const Args& a) { return ops::attention(a[0], a[1], a[2], scale, mask); });
  }
  // Inputs as the models make them: [B, L, H, D] permuted to [B, H, L, D] (strided views).
  const Tensor qt = random_tensor({1, 50, 2, 64}, 60), kt = random_tensor({1, 70, 2, 64}, 61);
  compare_with_cpu("attention on permuted views", {{qt}, {kt}}, [](const Args& a) {
    const Tensor q = a[0].permute({0, 2, 1, 3}), k = a[1].permute({0, 2, 1, 3});
    return ops::attention(q, k, k, 0.125f);
  });
}

// Where cuDNN loads (gpu-check points LD_LIBRARY_PATH at the machine's libcudnn.so.9), bf16
// attention must run on its fused SDPA, not silently on the built-in kernel; the cases above
// then check its results. Says which kernel ran, for the report.
TEST(CudaOps, AttentionKernelInUse) {
  ZF_REQUIRE_GPU();
  const std::string kernel = cuda_attention_kernel();
  std::printf("  bf16 attention kernel: %s\n", kernel.c_str());
  if (std::getenv("ZFLOW_EXPECT_CUDNN") != nullptr) {
    EXPECT_EQ(kernel, "cudnn");
  }
  EXPECT_TRUE(kernel == "cudnn" || kernel == "built-in") << kernel;
}

TEST(CudaOps, Conv2dPadUpsampleGroupNorm) {
  ZF_REQUIRE_GPU();
  const Tensor x = random_tensor({2, 5, 17, 23}, 70);
  for (DType wt : {DType::F32, DType::F16}) {
    const Tensor w3 = random_tensor({7, 5, 3, 3}, 71).to(wt);
    const Tensor w1 = random_tensor({6, 5, 1, 1}, 72).to(wt);
    const Tensor b = random_tensor({7}, 73).to(wt);
    const std::string tag = std::string(" w ") + std::string(dtype_name(wt));
    compare_with_cpu("conv2d 3x3 pad 1" + tag, {{x}, weight(w3), weight(b)},
                     [](const Args& a) { return ops::conv2d(a[0], a[1], a[2], 1, 1); });
    compare_with_cpu("conv2d 3x3 stride 2 asymmetric pad" + tag, {{x}, weight(w3)},
                     [](const Args& a) {
                       return ops::conv2d(a[0], a[1], {}, 2, ops::Padding2d{0, 1, 0, 1});
                     });
    compare_with_cpu("conv2d 1x1" + tag, {{x}, weight(w1)},
                     [](const Args& a) { return ops::conv2d(a[0], a[1], {}, 1, 0); });
  }
  compare_with_cpu("pad2d", {{x}}, [](const Args& a) { return ops::pad2d(a[0], 1, 2, 3, 0); });
  compare_with_cpu("upsample_nearest2x", {{x}},
                   [](const Args& a) { return ops::upsample_nearest2x(a[0]); });
  const Tensor shifted = random_tensor({2, 8, 9, 11}, 74, 0.5f, 3.0f);
  const Tensor gamma = random_tensor({8}, 75).to(DType::BF16), beta = random_tensor({8}, 76);
  compare_with_cpu("group_norm", {{shifted}, weight(gamma), weight(beta)},
                   [](const Args& a) { return ops::group_norm(a[0], 4, a[1], a[2], 1e-6f); });
  compare_with_cpu("group_norm_silu", {{shifted}, weight(gamma), weight(beta)},
                   [](const Args& a) { return ops::group_norm_silu(a[0], 2, a[1], a[2], 1e-6f); });
  compare_with_cpu("group_norm no affine", {{shifted}},
                   [](const Args& a) { return ops::group_norm(a[0], 8, {}, {}, 1e-5f); });
}

}  // namespace
}  // namespace zflow
