// Times gemm on the shapes the real models run, for every kernel this processor has,
// and prints each against the machine's peak. Usage:
//   gemm_bench [--threads N] [--kernel scalar|avx2|avx512|avx512bf16] [--shape NAME] [--budget
//   SECONDS]
// Each case runs until it has used the time budget (at least twice) and reports the
// best run: other processes share the machine, and the best run is the least disturbed.
// On a busy machine even the best run loses time to other processes, so a second figure,
// "cpuGF/s", divides the work by the process CPU time per thread instead of wall time:
// the speed of the threads while they ran (it hides idle threads waiting for the slowest).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_features.h"
#include "backend/cpu/gemm.h"
#include "backend/cpu/gemm_kernels.h"
#include "backend/cpu/gemm_s8.h"
#include "core/dtype.h"
#include "core/thread_pool.h"

namespace {

using zflow::DType;
using zflow::cpu::GemmArgs;
using zflow::cpu::GemmIsa;

struct BenchShape {
  const char* name;
  int64_t m, n, k;
  bool trans_b;
  DType b_dtype;
};

// Z-Image DiT at 512 x 512: 1024 image tokens + 32 caption tokens, hidden 3840, FFN 10240,
// Linear weights stored N x K in bf16; a short caption alone (128 tokens) packs B for few
// rows. Convolutions (backend/cpu/conv2d.cpp: out[Cout, pixels] = w @ col, the columns
// in bf16 for a bf16 weight): the VAE decoder's 3x3 conv at 512 channels on a 128x128 map
// (weights 512 x 4608) and its last conv, 128 channels to RGB (a degenerate M = 3); a 3x3 conv
// at 64 channels (Real-ESRGAN Compact, 128x128). Attention per head: head_dim 128.
const BenchShape kShapes[] = {
    {"dit_qkv_proj", 1056, 3840, 3840, true, DType::BF16},
    {"dit_ffn_up", 1056, 10240, 3840, true, DType::BF16},
    {"dit_ffn_down", 1056, 3840, 10240, true, DType::BF16},
    {"text_128_tokens", 128, 3840, 3840, true, DType::BF16},
    {"vae_conv3x3_512", 512, 16384, 4608, false, DType::BF16},
    {"vae_conv_out", 3, 65536, 1152, false, DType::BF16},
    {"conv3x3_64", 64, 16384, 576, false, DType::BF16},
    {"attn_scores", 1024, 1024, 128, true, DType::F32},
    {"attn_values", 1024, 128, 1024, false, DType::F32},
    {"dit_qkv_f16", 1056, 3840, 3840, true, DType::F16},
    {"dit_qkv_f32", 1056, 3840, 3840, true, DType::F32},
    // GGUF weights against bf16 on a Z-Image projection (hidden 3840) for a short run of
    // 256 tokens: B stays quantised and is dequantised block by block as gemm packs it.
    {"zimage_256_bf16", 256, 3840, 3840, true, DType::BF16},
    {"zimage_256_q8_0", 256, 3840, 3840, true, DType::Q8_0},
    {"zimage_256_q4_0", 256, 3840, 3840, true, DType::Q4_0},
    {"zimage_256_q4_k", 256, 3840, 3840, true, DType::Q4_K},
    {"zimage_256_q6_k", 256, 3840, 3840, true, DType::Q6_K},
    // Float8 e4m3 weights (ComfyUI fp8 files, --fp8): one byte a value, widened as packed; the
    // per-tensor scale is gemm's alpha.
    {"zimage_256_f8_e4m3", 256, 3840, 3840, true, DType::F8_E4M3},
    // Int8 weights (ComfyUI int8_tensorwise files): the integer product of ops::linear's W8A8,
    // without its per-row activation quantisation and rescale.
    {"zimage_256_i8", 256, 3840, 3840, true, DType::I8},
};

// gemm_s8 (int8 x int8 in int32, AVX-512 VNNI) on the same projections: the products of
// ops::linear's W8A8 for int8 weights, with the rescale fused, without the activations'
// quantisation.
struct BenchShapeS8 {
  const char* name;
  int64_t m, n, k;
};
const BenchShapeS8 kShapesS8[] = {
    {"dit_qkv_proj", 1056, 3840, 3840},
    {"dit_ffn_down", 1056, 3840, 10240},
    {"zimage_256_s8", 256, 3840, 3840},
};

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double cpu_mhz() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("cpu MHz", 0) == 0) return std::atof(line.substr(line.find(':') + 1).c_str());
  return 0.0;
}

int simd_floats(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::Scalar:
      return 4;
    case GemmIsa::Avx2:
      return 8;
    case GemmIsa::Avx512:
      return 16;
    case GemmIsa::Avx512Bf16:  // vdpbf16ps: two multiply-adds in each of 16 lanes
      return 32;
  }
  return 1;
}

// The least wall time and CPU time per thread of `run`, over at least two runs and the budget.
template <class Run>
std::pair<double, double> best_times(const Run& run, double budget_s, int threads) {
  double best = 1e30, best_cpu = 1e30, used = 0.0;
  for (int i = 0; i < 2 || used < budget_s; ++i) {
    const double cpu0 = process_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, dt);
    best_cpu = std::min(best_cpu, (process_cpu_seconds() - cpu0) / threads);
    used += dt;
  }
  return {best, best_cpu};
}

void print_row(const char* kernel, const char* shape, int64_t m, int64_t n, int64_t k, bool trans_b,
               const char* b_dtype, double flops, std::pair<double, double> times, double peak) {
  const double gflops = flops / times.first * 1e-9, cpu_gflops = flops / times.second * 1e-9;
  std::printf("%-10s %-16s %6lld %6lld %6lld %-7s %5s %9.2f %9.1f %5.1f%% %9.1f %5.1f%%\n", kernel,
              shape, static_cast<long long>(m), static_cast<long long>(n),
              static_cast<long long>(k), trans_b ? "yes" : "no", b_dtype, times.first * 1e3, gflops,
              100.0 * gflops / peak, cpu_gflops, 100.0 * cpu_gflops / peak);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string only_kernel, only_shape;
  double budget_s = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--threads")
      threads = std::atoi(value.c_str());
    else if (flag == "--kernel")
      only_kernel = value;
    else if (flag == "--shape")
      only_shape = value;
    else if (flag == "--budget")
      budget_s = std::atof(value.c_str());
    else {
      std::fprintf(stderr, "gemm_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  zflow::ThreadPool::set_compute_threads(threads);

  // Peak of each kernel: threads x clock x 2 FMA pipes x multiply-adds per vector x 2 flops.
  // Zen 4 runs 512-bit FMAs as two 256-bit halves, so there the AVX-512 peak is the AVX2 one;
  // a boost clock above the nominal one shows as more than 100 %.
  const std::vector<GemmIsa> isas = zflow::cpu::gemm_available_isas();
  const double ghz = cpu_mhz() / 1000.0;
  auto peak_of = [&](GemmIsa isa) { return threads * ghz * 2 * simd_floats(isa) * 2; };
  std::printf("cpu: %s; %d threads at %.2f GHz (cpu MHz from /proc/cpuinfo)\n",
              zflow::cpu::cpu_features_string().c_str(), threads, ghz);
  for (GemmIsa isa : isas)
    std::printf(
        "peak assumed for %s: %d threads x %.2f GHz x 2 FMA pipes x %d x 2 = %.0f GFLOP/s\n",
        std::string(zflow::cpu::gemm_isa_name(isa)).c_str(), threads, ghz, simd_floats(isa),
        peak_of(isa));
  std::printf("%-10s %-16s %6s %6s %6s %-7s %5s %9s %9s %6s %9s %6s\n", "kernel", "shape", "M", "N",
              "K", "trans_b", "B", "ms", "GFLOP/s", "%peak", "cpuGF/s", "%peak");

  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const BenchShape& s : kShapes) {
    if (!only_shape.empty() && only_shape != s.name) continue;
    std::vector<float> a(static_cast<size_t>(s.m * s.k)), b32(static_cast<size_t>(s.k * s.n));
    for (auto& v : a) v = dist(rng);
    for (auto& v : b32) v = dist(rng);
    std::vector<uint8_t> b(zflow::dtype_nbytes(s.b_dtype, static_cast<int64_t>(b32.size())));
    zflow::from_f32(b32.data(), b.data(), s.b_dtype, b32.size());
    std::vector<float> c(static_cast<size_t>(s.m * s.n));
    GemmArgs g;
    g.trans_b = s.trans_b;
    g.m = s.m;
    g.n = s.n;
    g.k = s.k;
    g.a = a.data();
    g.lda = s.k;
    g.b = b.data();
    g.b_dtype = s.b_dtype;
    g.ldb = s.trans_b ? s.k : s.n;
    g.c = c.data();
    g.ldc = s.n;
    const double flops = 2.0 * s.m * s.n * s.k;
    for (GemmIsa isa : isas) {
      if (!only_kernel.empty() && only_kernel != zflow::cpu::gemm_isa_name(isa)) continue;
      const auto times = best_times([&] { zflow::cpu::gemm_with_isa(isa, g); }, budget_s, threads);
      print_row(std::string(zflow::cpu::gemm_isa_name(isa)).c_str(), s.name, s.m, s.n, s.k,
                s.trans_b, std::string(zflow::dtype_name(s.b_dtype)).c_str(), flops, times,
                peak_of(isa));
    }
  }

  if (!zflow::cpu::gemm_s8_available() || (!only_kernel.empty() && only_kernel != "avx512vnni"))
    return 0;
  // vpdpbusd: four multiply-adds in each of 16 lanes, on the same 2 pipes.
  const double s8_peak = threads * ghz * 2 * 64 * 2;
  std::printf("peak assumed for avx512vnni (gemm_s8): %.0f GOP/s\n", s8_peak);
  std::uniform_int_distribution<int> code(-128, 127);
  for (const BenchShapeS8& s : kShapesS8) {
    if (!only_shape.empty() && only_shape != s.name) continue;
    std::vector<int8_t> a(static_cast<size_t>(s.m * s.k)), b(static_cast<size_t>(s.n * s.k));
    for (auto& v : a) v = static_cast<int8_t>(code(rng));
    for (auto& v : b) v = static_cast<int8_t>(code(rng));
    std::vector<float> row_scale(static_cast<size_t>(s.m), 1e-3f),
        col_scale(static_cast<size_t>(s.n), 1e-3f), bias(static_cast<size_t>(s.n), 0.5f),
        c(static_cast<size_t>(s.m * s.n));
    zflow::cpu::GemmS8Args g;
    g.m = s.m;
    g.n = s.n;
    g.k = s.k;
    g.a = a.data();
    g.lda = s.k;
    g.b = b.data();
    g.ldb = s.k;
    g.row_scale = row_scale.data();
    g.col_scale = col_scale.data();
    g.bias = bias.data();
    g.c = c.data();
    g.ldc = s.n;
    const auto times = best_times([&] { zflow::cpu::gemm_s8(g); }, budget_s, threads);
    print_row("avx512vnni", s.name, s.m, s.n, s.k, true, "I8", 2.0 * s.m * s.n * s.k, times,
              s8_peak);
  }
  return 0;
}
