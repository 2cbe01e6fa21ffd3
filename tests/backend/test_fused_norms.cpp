// The fused norms of ops.h. The adaLN pre-norms against their definitions evaluated in double
// (tolerance 1e-6 of the output scale, as test_transformer_ops.cpp: a handful of float32
// operations on inputs of order one). The gated residual and QK-norm + RoPE against the
// compositions they replace, which run the same float32 operations in the same order on the
// CPU and so must agree bit for bit (the parts are tested against their definitions in
// test_transformer_ops.cpp and test_token_ops.cpp).
#include <cmath>

#include "backend/ops.h"
#include "core/error.h"
#include "op_test_util.h"

namespace zflow {
namespace {

using test::random_tensor;

constexpr float kEps = 1e-6f;

void expect_identical(const Tensor& got, const Tensor& want, const char* what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  EXPECT_EQ(got.to_f32_vector(), want.to_f32_vector()) << what;
}

// Tokens [2, 7, 33]: 33 features straddle vector widths; two samples so that a per-sample
// vector read from the wrong sample shows.
struct Tokens {
  Tensor x = random_tensor({2, 7, 33}, 60, -3.0f, 3.0f);
  Tensor r = random_tensor({2, 7, 33}, 61, -3.0f, 3.0f);
  Tensor weight = random_tensor({33}, 62, 0.5f, 1.5f).to(DType::BF16);
  Tensor shift = random_tensor({2, 33}, 63);
  Tensor scale = random_tensor({2, 33}, 64);
  Tensor gate = random_tensor({2, 33}, 65);
};

// norm(x) * (1 + scale) + shift per row of x[B, L, D], the norm in double; no shift when
// `shift` is undefined.
std::vector<double> modulated(const Tensor& x, bool rms, const Tensor& weight, const Tensor& shift,
                              const Tensor& scale) {
  const auto xv = test::as_double(x), sc = test::as_double(scale);
  const auto w = weight.defined() ? test::as_double(weight) : std::vector<double>{};
  const auto sh = shift.defined() ? test::as_double(shift) : std::vector<double>{};
  const int64_t len = x.size(1), d = x.size(2), rows = x.size(0) * len;
  std::vector<double> out(xv.size());
  for (int64_t r = 0; r < rows; ++r) {
    const double* row = xv.data() + r * d;
    double mean = 0.0, sq = 0.0;
    if (!rms) {
      for (int64_t i = 0; i < d; ++i) mean += row[i] / static_cast<double>(d);
    }
    for (int64_t i = 0; i < d; ++i) sq += (row[i] - mean) * (row[i] - mean);
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(d) + kEps);
    const int64_t v = (r / len) * d;
    for (int64_t i = 0; i < d; ++i) {
      const double n = (row[i] - mean) * inv * (w.empty() ? 1.0 : w[i]);
      out[r * d + i] = n * (1.0 + sc[v + i]) + (sh.empty() ? 0.0 : sh[v + i]);
    }
  }
  return out;
}

TEST(FusedNorms, ModulatedNormsMatchDefinition) {
  const Tokens t;
  constexpr double kTol = 1e-6;
  EXPECT_LE(test::relative_error(ops::rms_norm_modulate(t.x, t.weight, kEps, t.shift, t.scale),
                                 modulated(t.x, true, t.weight, t.shift, t.scale)),
            kTol);
  EXPECT_LE(test::relative_error(ops::rms_norm_modulate(t.x, t.weight, kEps, {}, t.scale),
                                 modulated(t.x, true, t.weight, {}, t.scale)),
            kTol);
  EXPECT_LE(test::relative_error(ops::layer_norm_modulate(t.x, kEps, t.shift, t.scale),
                                 modulated(t.x, false, {}, t.shift, t.scale)),
            kTol);
  EXPECT_LE(test::relative_error(ops::layer_norm_modulate(t.x, kEps, {}, t.scale),
                                 modulated(t.x, false, {}, {}, t.scale)),
            kTol);
}

TEST(FusedNorms, GatedResidualEqualsNormThenAddGated) {
  const Tokens t;
  expect_identical(ops::add_gated_rms_norm(t.x, t.gate, t.r, t.weight, kEps),
                   ops::add_gated(t.x, t.gate, ops::rms_norm(t.r, t.weight, kEps)),
                   "add_gated_rms_norm");
  expect_identical(ops::add_gated_rms_norm(t.x, {}, t.r, {}, kEps),
                   ops::add(t.x, ops::rms_norm(t.r, {}, kEps)), "add_gated_rms_norm without gate");
}

TEST(FusedNorms, QkNormRopeEqualsNormThenRope) {
  const Tensor x = random_tensor({2, 5, 3, 16}, 66, -3.0f, 3.0f);
  const Tensor w = random_tensor({16}, 67, 0.5f, 1.5f).to(DType::BF16);
  for (int64_t table_batch : {1, 2}) {
    const Tensor angles = random_tensor({table_batch, 5, 8}, 68, -6.0f, 6.0f);
    std::vector<float> c, s;
    for (float a : angles.to_f32_vector()) {
      c.push_back(std::cos(a));
      s.push_back(std::sin(a));
    }
    const Tensor cos = Tensor::from_f32(angles.shape(), c),
                 sin = Tensor::from_f32(angles.shape(), s);
    for (auto layout : {ops::RopeLayout::kInterleaved, ops::RopeLayout::kHalfSplit}) {
      expect_identical(ops::rms_norm_rope(x, w, kEps, cos, sin, layout),
                       ops::rope(ops::rms_norm(x, w, kEps), cos, sin, layout), "rms_norm_rope");
      expect_identical(ops::rms_norm_rope(x, {}, kEps, cos, sin, layout),
                       ops::rope(ops::rms_norm(x, {}, kEps), cos, sin, layout),
                       "rms_norm_rope without weight");
    }
  }
}

TEST(FusedNorms, RefuseMisshapenInputsByName) {
  const Tokens t;
  const Tensor wrong = random_tensor({2, 32}, 69);
  auto message = [](auto&& call) {
    try {
      call();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] {
              ops::rms_norm_modulate(t.x, t.weight, kEps, {}, wrong);
            }).find("[rms_norm_modulate] scale"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ops::layer_norm_modulate(t.x, kEps, {}, {});
            }).find("[layer_norm_modulate] scale is undefined"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ops::add_gated_rms_norm(t.x, t.gate, t.r.slice(1, 0, 6), {}, kEps);
            }).find("[add_gated_rms_norm] r"),
            std::string::npos);
  EXPECT_NE(message([&] {
              ops::rms_norm_rope(t.x, {}, kEps, t.shift, t.shift, {});
            }).find("[rms_norm_rope]"),
            std::string::npos);
}

}  // namespace
}  // namespace zflow
