// gemm against gemm_reference (the definition: a triple loop accumulating in double), for
// every kernel this processor can run, over shapes around the tile sizes and across the
// cache blocks, both transposes, every B dtype, padded strides and alpha / beta cases.
//
// Tolerance, per element: |c - ref| <= 1e-5 * (|alpha| * sum_k |a_ik b_kj| + |beta c0_ij|).
// gemm accumulates in float32: each output is an FMA chain over one depth block (kc <= 256
// terms) plus one addition per further block, each step rounding by at most u = 2^-24
// (6e-8) relative to the magnitudes summed so far. Rounding errors of random sign grow like
// sqrt(steps) * u, about 1e-6 of sum |a||b| for these depths; the worst case (all errors
// aligned) is steps * u, about 1.6e-5 at K = 1023. 1e-5 sits well above the expected error
// yet far below any real mistake: a dropped, doubled or misplaced term moves the result by
// about one |a||b|, i.e. 1/K of the scale, at least 1e-3 for the depths here (K <= 1023).
// The reference widens B from the same stored values, so B's dtype adds no error.
// The bfloat16-pair kernel (avx512bf16) first rounds A, and B where bfloat16 cannot hold it,
// to bfloat16; its reference is the same triple loop over those rounded inputs, which it then
// multiplies and accumulates like the float32 kernels (a product of two bfloat16 values is
// exact in float32), so the same tolerance holds.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/dequant_avx2.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_blocking.h"
#include "backend/cpu/gemm_kernels.h"
#include "core/error.h"
#include "core/quant_blocks.h"
#include "core/thread_pool.h"
#include "test_util.h"
// Last: the kernel templates, instantiated below for plain (baseline) code.
#include "backend/cpu/gemm_microkernel.h"

namespace zflow::cpu {
namespace {

// The AVX-512 kernel's tile (12 x 32) and cache blocks, driven by portable 16-float vectors,
// so its geometry (edges, block boundaries, packing widths) is checked on every machine,
// not only on those with AVX-512; gemm_kernel_avx512.cpp differs from this only in the
// intrinsics behind its small Ops struct.
struct Portable16Ops {
  struct V {
    float x[16];
  };
  static constexpr int kWidth = 16;
  static V zero() { return broadcast(0.0f); }
  static V load(const float* p) {
    V v;
    std::memcpy(v.x, p, sizeof(v.x));
    return v;
  }
  static void store(float* p, const V& v) { std::memcpy(p, v.x, sizeof(v.x)); }
  static V broadcast(float s) {
    V v;
    std::fill(v.x, v.x + 16, s);
    return v;
  }
  static V fma(const V& a, const V& b, V c) {
    for (int l = 0; l < 16; ++l) c.x[l] += a.x[l] * b.x[l];
    return c;
  }
  static V mul(V a, const V& b) {
    for (int l = 0; l < 16; ++l) a.x[l] *= b.x[l];
    return a;
  }
  static void widen_f16(const uint16_t* src, float* dst, int64_t n) {
    for (int64_t i = 0; i < n; ++i) dst[i] = f16_bits_to_f32(src[i]);
  }
};

// The bfloat16-pair kernel's geometry on the same portable vectors: a slot's two bfloat16
// halves are multiplied and added as vdpbf16ps does, so the driver's slot arithmetic and the
// pair packing are checked on every machine.
struct Portable16PairOps : Portable16Ops {
  static float half(float slot, int h) {
    const uint32_t bits = __builtin_bit_cast(uint32_t, slot);
    return bf16_bits_to_f32(static_cast<uint16_t>(h == 0 ? bits : bits >> 16));
  }
  static V dot_pair(const V& a, const V& b, V c) {
    for (int l = 0; l < 16; ++l)
      c.x[l] += half(a.x[l], 0) * half(b.x[l], 0) + half(a.x[l], 1) * half(b.x[l], 1);
    return c;
  }
};

const GemmKernel kAvx512Bf16Geometry{
    GemmIsa::Avx512Bf16,
    kGemmBlockingAvx512Bf16,
    gemm_detail::micro_kernel<Portable16PairOps, kGemmBlockingAvx512Bf16.mr,
                              kGemmBlockingAvx512Bf16.nr / 16>,
    gemm_detail::pack_a_pairs<Portable16PairOps, kGemmBlockingAvx512Bf16.mr>,
    gemm_detail::pack_b_pairs<Portable16PairOps, kGemmBlockingAvx512Bf16.nr>,
    2,
};

const GemmKernel kAvx512Geometry{
    GemmIsa::Avx512,
    kGemmBlockingAvx512,
    gemm_detail::micro_kernel<Portable16Ops, kGemmBlockingAvx512.mr, kGemmBlockingAvx512.nr / 16>,
    gemm_detail::pack_a<kGemmBlockingAvx512.mr>,
    gemm_detail::pack_b<Portable16Ops, kGemmBlockingAvx512.nr>,
};

// Every way of running gemm under test: each kernel the processor has, and the AVX-512
// geometries on portable vectors.
struct Runner {
  std::string name;
  std::function<void(const GemmArgs&)> run;
  bool rounds_to_bf16 = false;  // multiplies bfloat16 pairs
};

std::vector<Runner> runners() {
  std::vector<Runner> out;
  for (GemmIsa isa : gemm_available_isas())
    out.push_back({std::string(gemm_isa_name(isa)),
                   [isa](const GemmArgs& g) { gemm_with_isa(isa, g); },
                   isa == GemmIsa::Avx512Bf16});
  out.push_back(
      {"avx512-geometry", [](const GemmArgs& g) { gemm_with_kernel(kAvx512Geometry, g); }});
  out.push_back({"avx512bf16-geometry",
                 [](const GemmArgs& g) { gemm_with_kernel(kAvx512Bf16Geometry, g); }, true});
  return out;
}

// The values rounded to bfloat16 (to nearest even), as the pair kernels round their inputs.
std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = bf16_bits_to_f32(f32_to_bf16_bits(x));
  return v;
}

// The pair kernels' reference: gemm_reference of `g` with A and B replaced by `a` and `b_wide`
// (B's values as float32, in B's layout) rounded to bfloat16, starting from C = `c0`.
std::vector<float> bf16_reference(GemmArgs g, const std::vector<float>& a,
                                  const std::vector<float>& b_wide, std::vector<float> c0) {
  const std::vector<float> a_bf16 = rounded_to_bf16(a), b_bf16 = rounded_to_bf16(b_wide);
  g.a = a_bf16.data();
  g.b = b_bf16.data();
  g.b_dtype = DType::F32;
  g.c = c0.data();
  gemm_reference(g);
  return c0;
}

struct Shape {
  int64_t m, n, k;
};

struct Case {
  Shape s;
  bool trans_a, trans_b;
  DType b_dtype;
  int64_t pad;  // extra elements at the end of every row of A, B and C
  float alpha, beta;
};

std::string describe(const Case& c) {
  return fmt::format("m={} n={} k={} trans_a={} trans_b={} B={} pad={} alpha={} beta={}", c.s.m,
                     c.s.n, c.s.k, c.trans_a, c.trans_b, dtype_name(c.b_dtype), c.pad, c.alpha,
                     c.beta);
}

// Inputs of one case: A, B (in its stored dtype), C's initial value, and op(A), op(B)
// widened to dense float for the error bound.
struct Problem {
  std::vector<float> a, c0;
  std::vector<uint8_t> b;
  std::vector<float> b_f32;       // B's stored values widened, in B's layout
  std::vector<float> op_a, op_b;  // m x k, k x n
  GemmArgs args;
};

Problem make_problem(const Case& cs, std::mt19937& rng) {
  const auto [m, n, k] = cs.s;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  Problem p;
  GemmArgs& g = p.args;
  g.trans_a = cs.trans_a;
  g.trans_b = cs.trans_b;
  g.m = m;
  g.n = n;
  g.k = k;
  g.alpha = cs.alpha;
  g.beta = cs.beta;
  g.b_dtype = cs.b_dtype;
  const int64_t a_rows = cs.trans_a ? k : m, a_cols = cs.trans_a ? m : k;
  const int64_t b_rows = cs.trans_b ? n : k, b_cols = cs.trans_b ? k : n;
  g.lda = a_cols + cs.pad;
  g.ldb = b_cols + cs.pad;
  g.ldc = n + cs.pad;

  p.a.resize(static_cast<size_t>(a_rows * g.lda));
  for (auto& v : p.a) v = dist(rng);
  std::vector<float>& b_f32 = p.b_f32;
  b_f32.resize(static_cast<size_t>(b_rows * g.ldb));
  for (auto& v : b_f32) v = cs.b_dtype == DType::I8 ? std::round(127 * dist(rng)) : dist(rng);
  p.b.resize(dtype_nbytes(cs.b_dtype, static_cast<int64_t>(b_f32.size())));
  from_f32(b_f32.data(), p.b.data(), cs.b_dtype, b_f32.size());
  to_f32(p.b.data(), cs.b_dtype, b_f32.data(), b_f32.size());  // the values B really holds

  // With beta == 0, C must not be read: start it as NaN so a read would show.
  p.c0.resize(static_cast<size_t>(m * g.ldc));
  for (auto& v : p.c0) v = cs.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : dist(rng);

  p.op_a.resize(static_cast<size_t>(m * k));
  p.op_b.resize(static_cast<size_t>(k * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t q = 0; q < k; ++q)
      p.op_a[i * k + q] = cs.trans_a ? p.a[q * g.lda + i] : p.a[i * g.lda + q];
  for (int64_t q = 0; q < k; ++q)
    for (int64_t j = 0; j < n; ++j)
      p.op_b[q * n + j] = cs.trans_b ? b_f32[j * g.ldb + q] : b_f32[q * g.ldb + j];
  g.a = p.a.data();
  g.b = p.b.data();
  return p;
}

// Runs one case through the reference and every kernel; returns false on the first mismatch.
bool check_case(const Case& cs, const std::vector<Runner>& runs, std::mt19937& rng) {
  Problem p = make_problem(cs, rng);
  const auto [m, n, k] = cs.s;
  std::vector<float> ref = p.c0;
  GemmArgs g = p.args;
  g.c = ref.data();
  gemm_reference(g);
  const std::vector<float> ref_bf16 = bf16_reference(g, p.a, p.b_f32, p.c0);

  std::vector<double> scale(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t q = 0; q < k; ++q) {
      const double a = std::fabs(p.op_a[i * k + q]);
      for (int64_t j = 0; j < n; ++j) scale[i * n + j] += a * std::fabs(p.op_b[q * n + j]);
    }

  for (const Runner& runner : runs) {
    std::vector<float> out = p.c0;
    g.c = out.data();
    runner.run(g);
    const std::vector<float>& want = runner.rounds_to_bf16 ? ref_bf16 : ref;
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < g.ldc; ++j) {
        const size_t at = static_cast<size_t>(i * g.ldc + j);
        if (j >= n) {  // padding between rows of C stays untouched
          const bool same = std::isnan(p.c0[at]) ? std::isnan(out[at]) : out[at] == p.c0[at];
          EXPECT_TRUE(same) << runner.name << " wrote C's row padding at (" << i << ", " << j
                            << ") for " << describe(cs);
          if (!same) return false;
          continue;
        }
        const double c0 = cs.beta == 0.0f ? 0.0 : std::fabs(cs.beta * p.c0[at]);
        const double tol = 1e-5 * (std::fabs(cs.alpha) * scale[i * n + j] + c0) +
                           std::numeric_limits<float>::min();
        const double err = std::fabs(static_cast<double>(out[at]) - want[at]);
        if (!(err <= tol)) {
          ADD_FAILURE() << runner.name << " differs at (" << i << ", " << j << "): got " << out[at]
                        << ", reference " << want[at] << ", tolerance " << tol << " for "
                        << describe(cs);
          return false;
        }
      }
    }
  }
  return true;
}

// Sizes around the register tiles (4/6/12 x 8/16/32), past one A block (mc <= 192) and
// B block (nc = 2048), and deeper than one depth block (kc <= 256), with 0 and 1.
const std::vector<Shape> kShapes = {
    {0, 5, 7},     {5, 0, 7},     {5, 7, 0},     {1, 1, 1},      {1, 7, 31},
    {7, 1, 33},    {31, 33, 65},  {33, 31, 127}, {65, 127, 33},  {127, 65, 257},
    {1, 1023, 65}, {3, 65, 1023}, {1023, 7, 31}, {200, 33, 513}, {7, 2081, 300},
};

TEST(Gemm, MatchesReferenceForEveryKernel) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(1234);
  // alpha / beta pairs: plain product, beta == 0 with a scale, accumulate, both general.
  const float alphas[] = {1.0f, 0.5f, 1.0f, -1.5f};
  const float betas[] = {0.0f, 0.0f, 1.0f, 0.75f};
  int variant = 0;
  for (const Shape& s : kShapes)
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (DType dt :
             {DType::F32, DType::BF16, DType::F16, DType::F8_E4M3, DType::F8_E5M2, DType::I8}) {
          const Case cs{
              s, ta, tb, dt, variant % 3 == 0 ? 0 : 3, alphas[variant % 4], betas[variant % 4]};
          ++variant;
          if (!check_case(cs, runs, rng)) return;
        }
}

// GGML block-quantised weights (Linear layout, blocks along K) against the definition:
// dequantise, then multiply. Depths of whole k-quant blocks (256) that cross the depth block
// (kc = 256, and 192 -> 256 for the AVX-512 geometry), widths across the tile and the B
// block (nc = 2048), a padded ldb. The reference widens B from the same stored blocks with
// the same float32 arithmetic, so the tolerance above holds unchanged.
TEST(Gemm, QuantisedWeightsMatchDequantiseThenMultiply) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(4321);
  const Shape shapes[] = {
      {1, 1, 256}, {7, 33, 256}, {31, 65, 512}, {200, 37, 768}, {13, 2081, 256}};
  int variant = 0;
  for (DType dt : {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K,
                   DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    for (const Shape& s : shapes) {
      const Case cs{s,
                    variant % 2 == 1,
                    true,
                    dt,
                    variant % 3 == 0 ? 256 : 0,
                    1.0f,
                    variant % 4 == 3 ? 0.5f : 0.0f};
      ++variant;
      if (dt == DType::Q2_K || dt == DType::Q3_K) continue;  // no quantiser: see below
      if (!check_case(cs, runs, rng)) return;
    }
}

// Q2_K and Q3_K, which zflow reads but does not write: B as random blocks with sane scales.
TEST(Gemm, ReadOnlyKQuantWeightsMatchDequantiseThenMultiply) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(77);
  for (DType dt : {DType::Q2_K, DType::Q3_K}) {
    const int64_t m = 19, n = 45, k = 512;
    std::vector<uint8_t> b(dtype_nbytes(dt, n * k));
    for (auto& byte : b) byte = static_cast<uint8_t>(rng());
    const size_t block = dtype_block_bytes(dt);
    const size_t d_at = dt == DType::Q2_K ? 80 : 108;  // fp16 d (and Q2_K's dmin after it)
    for (size_t blk = 0; blk < b.size() / block; ++blk)
      for (size_t h = d_at; h < block; h += 2) {
        const uint16_t half = f32_to_f16_bits(0.01f * static_cast<float>(1 + rng() % 50));
        b[blk * block + h] = static_cast<uint8_t>(half);
        b[blk * block + h + 1] = static_cast<uint8_t>(half >> 8);
      }
    std::vector<float> a(static_cast<size_t>(m * k)), ref(static_cast<size_t>(m * n));
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (auto& v : a) v = dist(rng);
    GemmArgs g;
    g.trans_b = true;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = a.data();
    g.lda = k;
    g.b = b.data();
    g.b_dtype = dt;
    g.ldb = k;
    g.c = ref.data();
    g.ldc = n;
    gemm_reference(g);
    std::vector<float> wide(static_cast<size_t>(n * k));
    to_f32(b.data(), dt, wide.data(), wide.size());
    const std::vector<float> ref_bf16 = bf16_reference(g, a, wide, std::vector<float>(ref.size()));
    for (const Runner& runner : runs) {
      std::vector<float> out(ref.size());
      g.c = out.data();
      runner.run(g);
      const std::vector<float>& want = runner.rounds_to_bf16 ? ref_bf16 : ref;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double scale = 0.0;
          for (int64_t q = 0; q < k; ++q) scale += std::fabs(a[i * k + q] * wide[j * k + q]);
          ASSERT_NEAR(out[i * n + j], want[i * n + j], 1e-5 * scale)
              << runner.name << " " << dtype_name(dt) << " at (" << i << ", " << j << ")";
        }
    }
  }
}

// The AVX2 dequantisers gemm packs Q8_0 / Q4_0 / Q4_K / Q5_K / Q6_K weights with must give
// the portable definition's floats exactly (gguf-py's, by test_quant_blocks): on quantised
// data, and on random block bytes (every scale, min and code pattern; the fp16 factors set
// to finite values so that no NaN payload decides the comparison).
TEST(Gemm, Avx2DequantisationEqualsTheDefinition) {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.f16c)) GTEST_SKIP() << "no AVX2 + F16C here";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> x(256 * 16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = normal(rng) * (1.0f + static_cast<float>(i / 32));
  // Where each type keeps its fp16 factors: d (and dmin) at these byte offsets of a block.
  const std::map<DType, std::vector<size_t>> factors = {{DType::Q8_0, {0}},
                                                        {DType::Q4_0, {0}},
                                                        {DType::Q4_K, {0, 2}},
                                                        {DType::Q5_K, {0, 2}},
                                                        {DType::Q6_K, {208}}};
  for (const auto& [t, offsets] : factors) {
    const auto n = static_cast<int64_t>(x.size());
    std::vector<uint8_t> quantised(dtype_nbytes(t, n)), random_bytes(quantised.size());
    quantize_blocks(t, x.data(), quantised.data(), n);
    const size_t block_bytes = dtype_nbytes(t, dtype_block_size(t));
    for (size_t i = 0; i < random_bytes.size(); ++i) {
      random_bytes[i] = static_cast<uint8_t>(rng());
      if (i % block_bytes == 0)
        for (size_t at : offsets) {  // fp16 in [0.5, 2): exponent 14 or 15, random mantissa
          random_bytes[i + at] = static_cast<uint8_t>(rng());
          random_bytes[i + at + 1] = static_cast<uint8_t>(0x38 | (rng() & 0x07));
        }
    }
    for (const auto* q : {&quantised, &random_bytes}) {
      std::vector<float> want(x.size()), got(x.size());
      dequantize_blocks(t, q->data(), want.data(), n);
      ASSERT_TRUE(dequantize_avx2(t, q->data(), got.data(), n)) << dtype_name(t);
      EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * 4), 0)
          << dtype_name(t) << (q == &quantised ? " quantised" : " random bytes");
    }
  }
  std::vector<float> unused(256);
  EXPECT_FALSE(dequantize_avx2(DType::Q2_K, nullptr, unused.data(), 256));
}

// gemm widens float8 weights through float16 with AVX2 (dequant_avx2.h): every code, in runs
// long enough for the vector loop and its scalar tail, must give the definition's float
// exactly, subnormals and NaNs included.
TEST(Gemm, Avx2Float8WideningIsExact) {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.f16c)) GTEST_SKIP() << "no AVX2 + F16C here";
  std::vector<uint8_t> codes(256 + 7);
  for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 37 % 256);
  for (int c = 0; c < 256; ++c) codes[c] = static_cast<uint8_t>(c);
  for (DType t : {DType::F8_E4M3, DType::F8_E5M2}) {
    std::vector<float> got(codes.size());
    widen_f8_avx2(t, codes.data(), got.data(), static_cast<int64_t>(codes.size()));
    for (size_t i = 0; i < codes.size(); ++i) {
      const float want =
          t == DType::F8_E4M3 ? f8e4m3_bits_to_f32(codes[i]) : f8e5m2_bits_to_f32(codes[i]);
      if (std::isnan(want))
        EXPECT_TRUE(std::isnan(got[i])) << dtype_name(t) << " code " << +codes[i];
      else
        EXPECT_EQ(got[i], want) << dtype_name(t) << " code " << +codes[i];
    }
  }
}

TEST(Gemm, QuantisedWeightsNeedTheLinearLayoutAndWholeBlocks) {
  float a[64] = {}, c[64] = {};
  uint8_t b[4 * 34] = {};
  GemmArgs g;
  g.m = 1;
  g.n = 2;
  g.k = 64;
  g.a = a;
  g.b = b;
  g.c = c;
  g.lda = 64;
  g.ldb = 64;
  g.ldc = 2;
  g.b_dtype = DType::Q8_0;
  EXPECT_THROW(gemm(g), Error);  // not trans_b
  g.trans_b = true;
  EXPECT_NO_THROW(gemm(g));
  g.k = 48;
  g.ldb = 48;
  EXPECT_THROW(gemm(g), Error);  // K not whole blocks
}

// Uneven thread grids: 3 and 5 threads cut C into regions that are not powers of two,
// along M for a tall shape and along N for a wide one.
TEST(Gemm, MatchesReferenceWithOddThreadCounts) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(99);
  for (int threads : {3, 5}) {
    ThreadPool::set_compute_threads(threads);
    for (const Shape& s : {Shape{301, 19, 97}, Shape{5, 611, 131}, Shape{67, 67, 67}})
      EXPECT_TRUE(check_case({s, false, true, DType::BF16, 1, 1.0f, 0.0f}, runs, rng));
  }
  ThreadPool::set_compute_threads(
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

// gemm() runs the kernel gemm_default_isa names for B's dtype: the bfloat16-pair kernel only
// under Bfloat16 precision, for bf16, float8 and GGML-quantised weights, where the processor
// has it.
TEST(Gemm, DefaultKernelFollowsTheWeightDtype) {
  if (std::getenv("ZFLOW_CPU_KERNEL") != nullptr) GTEST_SKIP() << "ZFLOW_CPU_KERNEL forces one";
  const std::vector<GemmIsa> isas = gemm_available_isas();
  const bool has_bf16 = isas.back() == GemmIsa::Avx512Bf16;
  const GemmIsa float32 = has_bf16 ? isas[isas.size() - 2] : isas.back();
  for (DType dt : {DType::BF16, DType::F8_E4M3, DType::Q8_0, DType::F32, DType::F16})
    EXPECT_EQ(gemm_default_isa(dt), float32) << "Float32 precision, " << dtype_name(dt);
  const test::ScopedMatmulPrecision bf16(MatmulPrecision::Bfloat16);
  for (DType dt : {DType::BF16, DType::F8_E4M3, DType::F8_E5M2, DType::Q8_0, DType::Q4_K})
    EXPECT_EQ(gemm_default_isa(dt), has_bf16 ? GemmIsa::Avx512Bf16 : float32) << dtype_name(dt);
  for (DType dt : {DType::F32, DType::F16})
    EXPECT_EQ(gemm_default_isa(dt), float32) << dtype_name(dt);
  std::mt19937 rng(7);
  for (DType dt : {DType::BF16, DType::F32}) {
    Problem p = make_problem({{45, 77, 300}, false, true, dt, 0, 1.0f, 0.0f}, rng);
    std::vector<float> want(p.c0.size()), out(p.c0.size());
    GemmArgs g = p.args;
    g.c = want.data();
    gemm_with_isa(gemm_default_isa(dt), g);
    g.c = out.data();
    gemm(g);
    EXPECT_EQ(out, want) << dtype_name(dt);
  }
}

TEST(Gemm, RejectsBadArguments) {
  float a[4] = {}, b[4] = {}, c[4] = {};
  GemmArgs g;
  g.m = g.n = g.k = 2;
  g.a = a;
  g.b = b;
  g.c = c;
  g.lda = g.ldb = g.ldc = 2;
  g.lda = 1;
  EXPECT_THROW(gemm(g), Error);
  g.lda = 2;
  g.b_dtype = DType::I32;
  EXPECT_THROW(gemm(g), Error);
  g.b_dtype = DType::F32;
  g.ldc = 1;
  EXPECT_THROW(gemm(g), Error);
}

TEST(Gemm, ListsKernels) {
  const std::vector<GemmIsa> isas = gemm_available_isas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas.front(), GemmIsa::Scalar);
  EXPECT_EQ(gemm_isa_name(GemmIsa::Avx512), "avx512");
  EXPECT_EQ(gemm_isa_name(GemmIsa::Avx512Bf16), "avx512bf16");
}

}  // namespace
}  // namespace zflow::cpu
