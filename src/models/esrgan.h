// ESRGAN's generator, RRDBNet (Wang et al., "ESRGAN: Enhanced Super-Resolution Generative
// Adversarial Networks", 2018; Real-ESRGAN, 2021): the upscaler ComfyUI's "Upscale Image (using
// Model)", A1111's hires fix and extras, and stable-diffusion.cpp's --upscale-model run.
//
//   x   = pixel_unshuffle(reflect_pad(x), f)           (Real-ESRGAN's 2x and 1x models: f = 2, 4)
//   fea = conv_first(x)
//   fea = fea + conv_body(RRDB_n(... RRDB_1(fea)))      residual-in-residual dense blocks
//   per 2x: fea = lrelu(conv_up_k(nearest_2x(fea)))
//   out = conv_last(lrelu(conv_hr(fea)))                cropped back to f-multiple padding
// RRDB(x)  = x + 0.2 * RDB3(RDB2(RDB1(x)))
// RDB(x)   = x + 0.2 * conv5([x, x1, x2, x3, x4]),  x_k = lrelu(conv_k([x, x1 .. x_{k-1}]))
// (ESRGAN+ adds conv1x1(x) to x2 and x2 to x4, after their activations.) Every conv is 3x3 with
// zero padding; lrelu has slope 0.2. Pictures are RGB in [0, 1]. Reference: spandrel 0.4.2
// architectures/ESRGAN. Weights bind by BasicSR's names (io/key_map_esrgan.h renames the other
// layouts).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/parameters.h"
#include "models/placement.h"
#include "models/upscaler.h"

namespace zflow::models {

struct EsrganConfig {
  int64_t in_channels = 3;  // of the picture (the network sees in_channels * unshuffle²)
  int64_t out_channels = 3;
  int64_t features = 64;  // num_feat
  int64_t growth = 32;    // num_grow_ch: what each dense conv adds
  int blocks = 23;        // RRDBs
  int upsamplings = 2;    // 2x steps: the network's own scale is 2^upsamplings
  int unshuffle = 1;      // pixel-unshuffle factor of the input: 1, 2 or 4
  bool plus = false;      // ESRGAN+

  // How many times larger the output picture is: 2^upsamplings / unshuffle.
  int scale() const { return (1 << upsamplings) / unshuffle; }

  // From the shapes of BasicSR-named weights: features and the network's input channels from
  // conv_first, growth from body.0.rdb1.conv1, blocks and upsamplings from how many body.{i} and
  // conv_up{k} exist, out_channels from conv_last, ESRGAN+ from a conv1x1; the unshuffle factor as
  // spandrel infers it (network input channels 4x or 16x the output's). Errors name the file.
  static EsrganConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // "4x ESRGAN, 23 RRDB blocks, 64 features, growth 32"
};

// Every parameter for `config`, by its BasicSR name, in binding order.
std::vector<ParameterSpec> esrgan_parameters(const EsrganConfig& config);

// Floating-point operations (2 x multiply-adds) of one run on a height x width picture.
double esrgan_flops(const EsrganConfig& config, int64_t height, int64_t width);

class Esrgan final : public Upscaler {
 public:
  // Binds every parameter by its BasicSR name (missing or wrong-shaped tensors are errors naming
  // them and the file), then puts them where `placement` says.
  Esrgan(const EsrganConfig& config, const io::WeightStore& weights,
         const Placement& placement = {});

  const EsrganConfig& config() const { return config_; }
  const Placement& placement() const { return placement_; }

  std::string summary() const override { return config_.summary(); }
  int scale() const override { return config_.scale(); }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t out_channels() const override { return config_.out_channels; }
  double flops(int64_t height, int64_t width) const override {
    return esrgan_flops(config_, height, width);
  }
  Tensor upscale(const Tensor& image) const override;

  struct Conv {
    Tensor weight, bias;  // bias undefined for ESRGAN+'s conv1x1
  };
  struct DenseBlock {
    Conv conv[5];
    std::optional<Conv> conv1x1;
  };
  struct Rrdb {
    DenseBlock rdb[3];
  };

 private:
  Tensor dense_block(const DenseBlock& block, const Tensor& x) const;

  EsrganConfig config_;
  Placement placement_;
  Conv conv_first_, conv_body_, conv_hr_, conv_last_;
  std::vector<Rrdb> body_;
  std::vector<Conv> conv_up_;
};

// From a file in any of the layouts io/key_map_esrgan.h lists (safetensors or GGUF).
Esrgan load_esrgan(const std::filesystem::path& path, const Placement& placement = {});

}  // namespace zflow::models
