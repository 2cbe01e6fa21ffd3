// Real-ESRGAN's compact upscaler, SRVGGNetCompact (Wang et al., Real-ESRGAN, 2021; the
// realesr-general-x4v3 and realesr-animevideov3 releases, A1111's "R-ESRGAN General 4xV3"): a
// plain stack of 3x3 convolutions on the input grid, upsampled only at the end.
//
//   y   = prelu_0(conv_0(x))
//   y   = prelu_k(conv_k(y))              k = 1 .. convs
//   out = pixel_shuffle(conv_last(y), s) + nearest_upsample(x, s)
//
// conv_last makes out_channels * s² channels; pixel_shuffle puts channel c * s² + i * s + j of
// cell (y, x) at pixel (y * s + i, x * s + j) of channel c, and the network learns the residual
// over the nearest-upsampled picture. Every conv has zero padding 1; each PReLU has one slope per
// feature. Keys as BasicSR saves the module list: body.{2k}.weight / .bias are the convs,
// body.{2k + 1}.weight the PReLU slopes. Reference: spandrel 0.4.2 architectures/Compact.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/parameters.h"
#include "models/placement.h"
#include "models/upscaler.h"

namespace zflow::models {

struct CompactConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t features = 64;  // num_feat
  int convs = 16;         // num_conv: the body convs between the first and the last
  int scale = 4;          // upscale: the pixel shuffle's factor

  // From the shapes of the body.N tensors, as spandrel infers them: in_channels and features
  // from body.0, convs from the highest index, out_channels and scale from the last conv's
  // outputs (out * s² with out the input's channels, else 3, 4 or 1; it must be the input's, which
  // the network adds to its output). Errors name the file.
  static CompactConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // "4x Compact, 16 convs, 64 features"
};

// Every parameter for `config`, by its BasicSR name, in binding order.
std::vector<ParameterSpec> compact_parameters(const CompactConfig& config);

class SrvggCompact final : public Upscaler {
 public:
  // Binds every parameter by name (missing or wrong-shaped tensors are errors naming them and the
  // file), then puts them where `placement` says.
  SrvggCompact(const CompactConfig& config, const io::WeightStore& weights,
               const Placement& placement = {});

  const CompactConfig& config() const { return config_; }

  std::string summary() const override { return config_.summary(); }
  int scale() const override { return config_.scale; }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t out_channels() const override { return config_.out_channels; }
  double flops(int64_t height, int64_t width) const override;
  Tensor upscale(const Tensor& image) const override;

  struct Layer {
    Tensor weight, bias, slope;  // slope undefined for the last conv
  };

 private:
  CompactConfig config_;
  Placement placement_;
  std::vector<Layer> layers_;  // convs + 2 of them, the last without an activation
};

}  // namespace zflow::models
