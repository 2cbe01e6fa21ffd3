// SPAN, the Swift Parameter-free Attention Network (Wan et al., "Swift Parameter-free Attention
// Network for Efficient Super-Resolution", 2024; 4x-ClearRealityV1 and the Nomos SPAN upscalers):
// convolutions only, with an attention that needs no weights of its own.
//
//   x    = (x - rgb_mean) * 255                         (unless the file carries `no_norm`)
//   f    = conv_1(x)
//   b_k  = SPAB_k(b_{k-1}), b_0 = f                     k = 1 .. 6
//   out  = conv_cat([f, conv_2(b_6), b_1, silu(c1_r(b_5)) of block 6]);  (a 1x1 conv)
//   y    = pixel_shuffle(upsampler.0(out), s)
// SPAB(x): o1 = c1_r(x), o2 = c2_r(silu(o1)), o3 = c3_r(silu(o2));
//          out = (o3 + x) * (sigmoid(o3) - 0.5)
// (The block also hands back o1, after the SiLU that the reference applies to it in place.)
// Every c*_r and conv_1 / conv_2 is a Conv3XC: in training a 1x1 -> 3x3 -> 1x1 chain (doubling
// the channels in between) plus a 1x1 skip `sk`; in evaluation, which spandrel always runs, one
// 3x3 conv with padding 1 whose kernel and bias are folded from those four convs (Conv3XC's
// update_params). zflow folds them once at load; the `eval_conv` tensors the files also carry
// are spandrel's cache of the same fold and are not read. Reference: spandrel 0.4.2
// architectures/SPAN.
#pragma once

#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/parameters.h"
#include "models/placement.h"
#include "models/upscaler.h"

namespace zflow::models {

struct SpanConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t features = 48;  // feature_channels
  int scale = 4;
  bool norm = true;  // subtract the RGB mean and multiply by 255 first (no `no_norm` buffer)

  // From the shapes, as spandrel infers them: in_channels and features from conv_1.sk, scale and
  // out_channels from upsampler.0's outputs (models/upscaler.h split_shuffled_channels), norm from
  // the absence of `no_norm`. Errors name the file.
  static SpanConfig infer_from_weights(const io::WeightStore& weights);

  std::string summary() const;  // "4x SPAN, 48 features"
};

// Every parameter for `config` by its name in the files, in binding order.
std::vector<ParameterSpec> span_parameters(const SpanConfig& config);

class Span final : public Upscaler {
 public:
  // Binds every parameter by name (missing or wrong-shaped tensors are errors naming them and the
  // file), folds each Conv3XC into its 3x3 conv, and puts the result where `placement` says.
  Span(const SpanConfig& config, const io::WeightStore& weights, const Placement& placement = {});

  const SpanConfig& config() const { return config_; }

  std::string summary() const override { return config_.summary(); }
  int scale() const override { return config_.scale; }
  int64_t in_channels() const override { return config_.in_channels; }
  int64_t out_channels() const override { return config_.out_channels; }
  double flops(int64_t height, int64_t width) const override;
  Tensor upscale(const Tensor& image) const override;

  struct Conv {
    Tensor weight, bias;
  };
  struct Block {
    Conv c1, c2, c3;
  };

 private:
  // The block's output; `first`, when given, receives silu(c1_r(x)).
  Tensor block(const Block& b, const Tensor& x, Tensor* first) const;

  SpanConfig config_;
  Placement placement_;
  Conv conv_1_, conv_2_, conv_cat_, upsampler_;
  std::vector<Block> blocks_;
};

}  // namespace zflow::models
