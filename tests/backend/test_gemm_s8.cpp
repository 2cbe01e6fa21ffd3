// gemm_s8 against its definition, computed here from first principles: the sums of int8
// products in 64-bit integers, then the epilogue's three float32 steps in gemm_s8.h's order.
// The kernel's sums are exact and it rounds the same three steps, so every output must equal
// the definition to the bit; no tolerance. Run for the AVX-512 VNNI kernel where the processor
// has it, and on every machine for its geometry (and a small one that crosses many blocks)
// driven by portable vectors that do what vpdpbusd does.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/gemm_blocking.h"
#include "backend/cpu/gemm_s8.h"
#include "backend/cpu/gemm_s8_kernels.h"
#include "core/error.h"
#include "core/thread_pool.h"
// Last: the kernel templates, instantiated below for plain (baseline) code.
#include "backend/cpu/gemm_s8_microkernel.h"

namespace zflow::cpu {
namespace {

struct PortableS8Ops {
  struct V {
    int32_t x[16];
  };
  static constexpr int kWidth = 16;
  static V zero() { return broadcast(0); }
  static V load(const void* p) {
    V v;
    std::memcpy(v.x, p, sizeof(v.x));
    return v;
  }
  static void store(void* p, const V& v) { std::memcpy(p, v.x, sizeof(v.x)); }
  static V broadcast(uint32_t word) {
    V v;
    for (int32_t& x : v.x) x = static_cast<int32_t>(word);
    return v;
  }
  // vpdpbusd: unsigned bytes of a times signed bytes of b, four to a lane, added without
  // saturation (wrapping, as the instruction does).
  static V dot4(V acc, const V& a, const V& b) {
    for (int l = 0; l < 16; ++l) {
      uint32_t sum = static_cast<uint32_t>(acc.x[l]);
      for (int t = 0; t < 4; ++t) {
        const int ua = static_cast<uint8_t>(static_cast<uint32_t>(a.x[l]) >> (8 * t));
        const int sb = static_cast<int8_t>(static_cast<uint32_t>(b.x[l]) >> (8 * t));
        sum += static_cast<uint32_t>(ua * sb);
      }
      acc.x[l] = static_cast<int32_t>(sum);
    }
    return acc;
  }
  static void finish(const V& sums, const int32_t* offset, float row_scale, const float* col_scale,
                     const float* bias, float* out) {
    for (int l = 0; l < 16; ++l) {
      const float y = static_cast<float>(sums.x[l] - offset[l]) * (row_scale * col_scale[l]);
      out[l] = bias != nullptr ? y + bias[l] : y;
    }
  }
};

template <int MR, int NR>
GemmS8Kernel portable_kernel(GemmBlocking blocking) {
  return {blocking, gemm_detail::micro_kernel_s8<PortableS8Ops, MR, NR / 16>,
          gemm_detail::pack_a_s8<MR>, gemm_detail::pack_b_s8<PortableS8Ops, NR>};
}

struct Runner {
  std::string name;
  std::function<void(const GemmS8Args&)> run;
};

std::vector<Runner> runners() {
  static const GemmS8Kernel vnni_geometry = portable_kernel<12, 32>(kGemmBlockingAvx512Vnni);
  // Blocks far smaller than the shapes below: many depth, row and column blocks per case.
  static const GemmS8Kernel small_blocks = portable_kernel<4, 16>({4, 16, 8, 64, 48});
  std::vector<Runner> out = {
      {"vnni geometry", [](const GemmS8Args& g) { gemm_s8_with_kernel(vnni_geometry, g); }},
      {"small blocks", [](const GemmS8Args& g) { gemm_s8_with_kernel(small_blocks, g); }},
  };
  if (gemm_s8_available()) out.push_back({"avx512vnni", [](const GemmS8Args& g) { gemm_s8(g); }});
  return out;
}

struct Problem {
  int64_t m, n, k, pad;  // pad: extra elements at the end of every row of A, B and C
  std::vector<int8_t> a, b;
  std::vector<float> row_scale, col_scale, bias;
  bool with_bias = true;

  GemmS8Args args(float* c) const {
    GemmS8Args g;
    g.m = m;
    g.n = n;
    g.k = k;
    g.a = a.data();
    g.lda = k + pad;
    g.b = b.data();
    g.ldb = k + pad;
    g.row_scale = row_scale.data();
    g.col_scale = col_scale.data();
    g.bias = with_bias ? bias.data() : nullptr;
    g.c = c;
    g.ldc = n + pad;
    return g;
  }

  // The definition, element by element.
  float expected(int64_t i, int64_t j) const {
    int64_t sum = 0;
    for (int64_t p = 0; p < k; ++p) sum += int64_t{a[i * (k + pad) + p]} * b[j * (k + pad) + p];
    const float y = static_cast<float>(sum) * (row_scale[i] * col_scale[j]);
    return with_bias ? y + bias[j] : y;
  }
};

Problem random_problem(int64_t m, int64_t n, int64_t k, int64_t pad, std::mt19937& rng) {
  Problem p{m, n, k, pad};
  std::uniform_int_distribution<int> code(-128, 127);
  std::uniform_real_distribution<float> scale(1e-4f, 1e-2f), bias(-1.0f, 1.0f);
  p.a.resize(static_cast<size_t>(m * (k + pad)));
  p.b.resize(static_cast<size_t>(n * (k + pad)));
  for (int8_t& v : p.a) v = static_cast<int8_t>(code(rng));
  for (int8_t& v : p.b) v = static_cast<int8_t>(code(rng));
  for (int64_t i = 0; i < m; ++i) p.row_scale.push_back(scale(rng));
  for (int64_t j = 0; j < n; ++j) {
    p.col_scale.push_back(scale(rng));
    p.bias.push_back(bias(rng));
  }
  return p;
}

// Runs every kernel on p and compares C (and the padding after each row, which must stay
// untouched) with the definition, bit for bit. Returns the number of mismatches.
int64_t mismatches(const Problem& p, const std::vector<Runner>& runs) {
  const int64_t ldc = p.n + p.pad;
  int64_t bad = 0;
  for (const Runner& r : runs) {
    const float sentinel = -12345.0f;
    std::vector<float> c(static_cast<size_t>(p.m * ldc), sentinel);
    r.run(p.args(c.data()));
    for (int64_t i = 0; i < p.m; ++i)
      for (int64_t j = 0; j < ldc; ++j) {
        const float got = c[i * ldc + j], want = j < p.n ? p.expected(i, j) : sentinel;
        if (std::memcmp(&got, &want, sizeof(float)) == 0) continue;
        if (++bad <= 5)
          ADD_FAILURE() << r.name << ": m=" << p.m << " n=" << p.n << " k=" << p.k
                        << " pad=" << p.pad << " c[" << i << "," << j << "] = " << got
                        << ", expected " << want;
      }
  }
  return bad;
}

// Shapes around the tiles (12 x 32, 4 x 16), the depth blocks (512, 64) and the slot width
// (4), K = 0 included; strides padded and not; with and without a bias.
TEST(GemmS8, EqualsTheDefinitionBitForBit) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(5);
  const int64_t ms[] = {1, 5, 12, 13, 49};
  const int64_t ns[] = {1, 17, 32, 33, 97};
  const int64_t ks[] = {0, 1, 3, 4, 7, 64, 129, 512, 515, 1100};
  for (int64_t m : ms)
    for (int64_t n : ns)
      for (int64_t k : ks) {
        Problem p = random_problem(m, n, k, (m + n + k) % 3 == 0 ? 5 : 0, rng);
        p.with_bias = (m + k) % 2 == 0;
        ASSERT_EQ(mismatches(p, runs), 0);
      }
}

// The largest magnitudes: every product at 127 * -128 or -128 * -128 over the deepest K the
// header allows. The sums (and the kernel's own sums of A offset by 128, up to 255 * 128 per
// product) must neither wrap nor saturate.
TEST(GemmS8, ExtremeCodesAtTheDeepestKStayExact) {
  const std::vector<Runner> runs = runners();
  for (const int8_t a_code : {int8_t{127}, int8_t{-128}}) {
    std::mt19937 rng(11);
    Problem p = random_problem(3, 33, kGemmS8MaxDepth, 0, rng);
    std::fill(p.a.begin(), p.a.end(), a_code);
    std::fill(p.b.begin(), p.b.end(), int8_t{-128});
    for (int64_t p0 = 0; p0 < p.k; ++p0) p.b[p.k + p0] = 127;  // column 1: the other sign
    ASSERT_EQ(mismatches(p, {runs.back()}), 0) << "a = " << int{a_code};
  }
}

// Uneven thread grids, as gemm's own test: C cut along M for a tall shape, along N for a wide one.
TEST(GemmS8, EqualsTheDefinitionOnOddThreadCounts) {
  const std::vector<Runner> runs = runners();
  std::mt19937 rng(23);
  for (int threads : {3, 5}) {
    ThreadPool::set_compute_threads(threads);
    for (auto [m, n, k] : {std::tuple{301, 19, 97}, {5, 611, 131}, {67, 67, 600}})
      EXPECT_EQ(mismatches(random_problem(m, n, k, 0, rng), runs), 0);
  }
  ThreadPool::set_compute_threads(
      static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(GemmS8, RejectsBadArguments) {
  std::mt19937 rng(1);
  const Problem p = random_problem(2, 2, 8, 0, rng);
  std::vector<float> c(4);
  const GemmS8Kernel kernel = portable_kernel<4, 16>({4, 16, 8, 64, 48});
  auto expect_error = [&](GemmS8Args g, const std::string& what) {
    try {
      gemm_s8_with_kernel(kernel, g);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  GemmS8Args g = p.args(c.data());
  g.lda = 7;
  expect_error(g, "lda");
  g = p.args(c.data());
  g.ldc = 1;
  expect_error(g, "ldc");
  g = p.args(c.data());
  g.k = kGemmS8MaxDepth + 1;
  g.lda = g.ldb = g.k;
  expect_error(g, "deeper");
  g = p.args(c.data());
  g.col_scale = nullptr;
  expect_error(g, "scale is null");
  if (!gemm_s8_available()) {
    EXPECT_THROW(gemm_s8(p.args(c.data())), Error);
  }
}

}  // namespace
}  // namespace zflow::cpu
