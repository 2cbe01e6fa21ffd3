// Picture upscaling networks, as ComfyUI's "Load Upscale Model" (spandrel) and A1111's upscalers
// load them: one interface over the architectures zflow runs, and the loader that tells them
// apart by their weights' names.
//   - ESRGAN's RRDBNet (ESRGAN, Real-ESRGAN x4plus / x2plus, BSRGAN, 4x-UltraSharp, ...):
//     models/esrgan.h
//   - Real-ESRGAN Compact (SRVGGNetCompact: realesr-general-x4v3, realesr-animevideov3):
//     models/srvgg_compact.h
//   - SPAN (4x-ClearRealityV1, the Nomos SPAN models, ...): models/span.h
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "core/tensor.h"
#include "io/weight_store.h"
#include "models/placement.h"

namespace zflow::models {

class Upscaler {
 public:
  virtual ~Upscaler() = default;

  virtual std::string summary() const = 0;  // "4x ESRGAN, 23 RRDB blocks, ..."
  virtual int scale() const = 0;            // how many times larger the output is
  virtual int64_t in_channels() const = 0;
  virtual int64_t out_channels() const = 0;
  // Floating-point operations (2 x multiply-adds) of one run on a height x width picture.
  virtual double flops(int64_t height, int64_t width) const = 0;

  // The upscaled pictures [B, out, H * scale, W * scale] for image [B, in, H, W] (RGB in [0, 1],
  // float32 on the CPU), float32 on the CPU and not clamped.
  virtual Tensor upscale(const Tensor& image) const = 0;
};

// torch.pixel_shuffle on the CPU: channel c * s² + i * s + j of cell (y, x) of y[B, C s², H, W]
// (float32) becomes pixel (y * s + i, x * s + j) of channel c, [B, C, H s, W s]. The last step
// of the upscalers that upsample by sub-pixel convolution.
Tensor pixel_shuffle(const Tensor& y, int s);

// The output channels and scale of a pixel-shuffle upsampler from its conv's `shuffled` outputs,
// as spandrel's get_scale_and_output_channels guesses them: channels * scale² with channels the
// input's if that leaves a square, else 3, 4 or 1; nullopt when none does (or the scale is over 8).
struct ShuffledChannels {
  int64_t channels;
  int scale;
};
std::optional<ShuffledChannels> split_shuffled_channels(int64_t shuffled, int64_t in_channels);

enum class UpscalerArchitecture { Esrgan, Compact, Span };

// Which architecture the weights are (BasicSR's `params_ema` / `params` nesting already removed),
// as spandrel tells them apart; nullopt when they are neither.
std::optional<UpscalerArchitecture> detect_upscaler(const io::WeightStore& weights);

// What a file's upscaler is without building it: its architecture's name (spandrel's: "ESRGAN",
// "RealESRGAN Compact", "SPAN") and scale. The same errors as load_upscaler.
struct UpscalerDescription {
  std::string architecture;
  int scale = 1;
};
UpscalerDescription describe_upscaler(const std::filesystem::path& path);

// The network in a file (safetensors, PyTorch checkpoint or GGUF) of either architecture, its
// parameters put where `placement` says. A file that is neither is an error naming it.
std::unique_ptr<Upscaler> load_upscaler(const std::filesystem::path& path,
                                        const Placement& placement = {});

}  // namespace zflow::models
