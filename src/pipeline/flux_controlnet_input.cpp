#include "pipeline/flux_controlnet_input.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <string_view>

#include "pipeline/flow_euler.h"
#include "pipeline/flux_control.h"
#include "pipeline/image_tensor.h"
#include "pipeline/start_latents.h"

namespace zflow::pipeline {
namespace {

// InstantX FLUX.1-dev-Controlnet-Union and Shakker-Labs FLUX.1-dev-ControlNet-Union-Pro.
constexpr std::array<std::string_view, 7> kUnionModes = {"canny", "tile", "depth", "blur",
                                                         "pose",  "gray", "lq"};

}  // namespace

Tensor flux_controlnet_input(const models::FluxControlNet& controlnet,
                             const models::AutoencoderKL& vae, Generator& generator,
                             const io::Image& control, int64_t width, int64_t height, int64_t batch,
                             bool vae_tiling) {
  if (!controlnet.config().takes_pixels())
    return flux_control_condition(vae, generator, control, width, height, batch, vae_tiling);
  return repeat_batch(image_to_tensor(fit_image(control, width, height)), batch);
}

bool flux_controlnet_acts(int step, int steps, double start, double end) {
  const double from = static_cast<double>(step) / steps, to = static_cast<double>(step + 1) / steps;
  return !(from < start || to > end);
}

std::optional<int> flux_union_mode(const std::string& name_or_number) {
  for (size_t i = 0; i < kUnionModes.size(); ++i)
    if (name_or_number == kUnionModes[i]) return static_cast<int>(i);
  int mode = -1;
  const char* end = name_or_number.data() + name_or_number.size();
  const auto [ptr, ec] = std::from_chars(name_or_number.data(), end, mode);
  if (ec != std::errc() || ptr != end || mode < 0) return std::nullopt;
  return mode;
}

std::string flux_union_modes() {
  std::string out;
  for (size_t i = 0; i < kUnionModes.size(); ++i)
    out += fmt::format("{}{} {}", i ? ", " : "", kUnionModes[i], i);
  return out;
}

}  // namespace zflow::pipeline
