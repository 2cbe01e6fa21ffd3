// Times the KL autoencoder (FLUX.1 / Z-Image VAE, release config) with random weights:
//   vae_bench [decode|encode] [image side, default 256] [repeats, default 1] [f32|bf16|f16]
// Prints the time, the decoder's convolution + attention FLOP count and rate (decode
// only), and the peak RSS. Speed does not depend on the weight values.
#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "core/dtype.h"
#include "core/memory_usage.h"
#include "core/thread_pool.h"
#include "models/autoencoder_kl.h"

namespace {

using zflow::models::AutoencoderKLConfig;

// 2 * MACs of the convolutions and the mid-block attention for an image of side `s`.
double decoder_flops(const AutoencoderKLConfig& c, double s) {
  const auto& ch = c.block_out_channels;
  const int levels = static_cast<int>(ch.size());
  double side = s / static_cast<double>(1 << (levels - 1));
  auto conv = [](double cin, double cout, double k, double px) {
    return 2 * cin * cout * k * k * px;
  };
  auto resnet = [&](double cin, double cout, double px) {
    return conv(cin, cout, 3, px) + conv(cout, cout, 3, px) +
           (cin != cout ? conv(cin, cout, 1, px) : 0);
  };
  const double top = static_cast<double>(ch.back());
  double px = side * side;
  double f = conv(static_cast<double>(c.latent_channels), top, 3, px);
  f += 2 * resnet(top, top, px) + 4 * conv(top, top, 1, px) + 4 * px * px * top;  // mid block
  double prev = top;
  for (int i = 0; i < levels; ++i) {
    const double out = static_cast<double>(ch[levels - 1 - i]);
    for (int j = 0; j <= c.layers_per_block; ++j) f += resnet(j == 0 ? prev : out, out, px);
    if (i + 1 < levels) {
      px *= 4;
      f += conv(out, out, 3, px);
    }
    prev = out;
  }
  return f + conv(prev, static_cast<double>(c.out_channels), 3, px);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "decode";
  const int64_t side = argc > 2 ? std::atoll(argv[2]) : 256;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 1;
  const std::string dtype_name = argc > 4 ? argv[4] : "bf16";
  const zflow::DType dtype = dtype_name == "f32"   ? zflow::DType::F32
                             : dtype_name == "f16" ? zflow::DType::F16
                                                   : zflow::DType::BF16;
  const AutoencoderKLConfig config;
  const zflow::models::AutoencoderKL vae(
      config, zflow::models::autoencoder_kl_random_weights(config, dtype, 1));
  const int64_t lat = side / 8;
  const zflow::Tensor input = what == "encode"
                                  ? zflow::Tensor::zeros({1, 3, side, side}, zflow::DType::F32)
                                  : zflow::Tensor::zeros({1, 16, lat, lat}, zflow::DType::F32);
  const double flops = decoder_flops(config, static_cast<double>(side));
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    if (what == "encode")
      vae.encode(input);
    else
      vae.decode(input);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string rate = what == "decode" ? fmt::format(", {:.3f} TFLOP, {:.1f} GFLOP/s",
                                                            flops / 1e12, flops / s / 1e9)
                                              : "";
    fmt::print("vae {} {}x{} {} weights, {} threads: {:.3f} s{}, peak RSS {:.2f} GB\n", what, side,
               side, dtype_name, zflow::ThreadPool::compute().threads(), s, rate,
               static_cast<double>(zflow::peak_rss_bytes()) / 1e9);
  }
  return 0;
}
