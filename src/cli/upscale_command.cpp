// `zflow upscale`: pictures made larger by an upscaler model (ESRGAN, Real-ESRGAN Compact, SPAN),
// in overlapping tiles as ComfyUI's "Upscale Image (using Model)" runs it: A1111's extras tab and
// stable-diffusion.cpp's upscale mode. A PNG keeps its text chunks (how it was made) and gains
// A1111's `postprocessing` one.
#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "cli/commands.h"
#include "cli/component_flags.h"
#include "core/error.h"
#include "core/file_io.h"
#include "io/image.h"
#include "pipeline/upscale.h"

namespace zflow::cli {
namespace {

namespace fs = std::filesystem;

struct UpscaleOptions {
  std::vector<std::string> inputs;
  std::string model;
  std::string output = "upscaled.png";
  int repeats = 1;
  std::optional<int> width, height;
  std::optional<double> scale;
  pipeline::UpscaleTiling tiling;
  std::string device;
};

// The output of input k of n: "%d" in the name becomes k; one input writes the name as given.
fs::path output_path(const std::string& pattern, size_t k, size_t n) {
  const auto at = pattern.find("%d");
  if (at == std::string::npos) {
    ZF_CHECK(n == 1, "[upscale] -o {}: {} inputs need a %d in the output name", pattern, n);
    return pattern;
  }
  std::string name = pattern;
  name.replace(at, 2, std::to_string(k));
  return name;
}

// The size the picture is brought to: -W / -H (one of them keeps the aspect ratio), or --scale
// times its own; none: the model's passes decide.
std::optional<std::pair<int, int>> target_size(const UpscaleOptions& o, const io::Image& image) {
  if (o.scale)
    return std::pair{static_cast<int>(image.width * *o.scale),
                     static_cast<int>(image.height * *o.scale)};
  if (!o.width && !o.height) return std::nullopt;
  const int w = o.width.value_or(
      static_cast<int>(std::lround(static_cast<double>(*o.height) * image.width / image.height)));
  const int h = o.height.value_or(
      static_cast<int>(std::lround(static_cast<double>(*o.width) * image.height / image.width)));
  return std::pair{w, h};
}

int run_upscale(const UpscaleOptions& o) {
  std::vector<fs::path> outputs;  // checked before the model loads
  for (size_t k = 0; k < o.inputs.size(); ++k)
    outputs.push_back(output_path(o.output, k, o.inputs.size()));
  const auto model = load_upscale_model(o.model, "--upscale-model", resolve_device(o.device));
  const std::string name = fs::path(o.model).stem().string();
  for (size_t k = 0; k < o.inputs.size(); ++k) {
    const std::string file = read_text_file(o.inputs[k], "upscale");
    const std::span bytes(reinterpret_cast<const uint8_t*>(file.data()), file.size());
    const io::Image in = io::decode_image(bytes, o.inputs[k]);
    io::PngText text = io::decode_text(bytes, o.inputs[k]);
    io::Image out;
    if (const auto size = target_size(o, in)) {
      ZF_CHECK(size->first >= 1 && size->second >= 1 && size->first <= io::kMaxImageSide &&
                   size->second <= io::kMaxImageSide,
               "[upscale] {}: the target size {}x{} is outside 1-{} pixels a side", o.inputs[k],
               size->first, size->second, io::kMaxImageSide);
      out = pipeline::upscale_image_to(*model, in, size->first, size->second, o.tiling);
    } else {
      out = in;
      for (int i = 0; i < o.repeats; ++i) out = pipeline::upscale_image(*model, out, o.tiling);
    }
    // A1111's extras record: the factor by width, as its upscaling_resize.
    text.emplace_back("postprocessing",
                      fmt::format("Postprocess upscale by: {:.4g}, Postprocess upscaler: {}",
                                  static_cast<double>(out.width) / in.width, name));
    io::write_image(outputs[k], out, text);
    fmt::print("wrote {} ({}x{})\n", outputs[k].string(), out.width, out.height);
  }
  return 0;
}

}  // namespace

Run add_upscale_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("upscale",
                                 "make pictures larger with an upscaler model (ESRGAN, "
                                 "Real-ESRGAN, 4x-UltraSharp, Compact, SPAN, ...)");
  auto o = std::make_shared<UpscaleOptions>();
  cmd->add_option("-i,--input", o->inputs, "a picture (PNG, JPEG or WebP); repeatable")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option(
         "--upscale-model", o->model,
         "the upscaler model file (safetensors, .pth or GGUF: ESRGAN, Real-ESRGAN and BSRGAN "
         "layouts, Real-ESRGAN Compact, SPAN; 1x, 2x, 4x or 8x)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("-o,--output", o->output,
                  "output .png, .jpg or .webp; %d numbers the pictures when there are several")
      ->capture_default_str();
  auto* repeats = cmd->add_option("--upscale-repeats", o->repeats, "how many passes of the model")
                      ->check(CLI::PositiveNumber)
                      ->capture_default_str();
  auto* width = cmd->add_option("-W,--width", o->width,
                                "the output width: passes of the model until the picture covers "
                                "it, then Lanczos to it (A1111's); -H alone keeps the aspect")
                    ->check(CLI::PositiveNumber)
                    ->excludes(repeats);
  auto* height = cmd->add_option("-H,--height", o->height, "the output height (as -W)")
                     ->check(CLI::PositiveNumber)
                     ->excludes(repeats);
  cmd->add_option("--scale", o->scale,
                  "the output size as a multiple of the input's, reached as -W / -H are "
                  "(A1111's 'Resize')")
      ->check(CLI::PositiveNumber)
      ->excludes(repeats)
      ->excludes(width)
      ->excludes(height);
  cmd->add_option("--tile", o->tiling.tile,
                  "tile side in input pixels (ComfyUI's; smaller needs less memory)")
      ->check(CLI::Range(64, 4096))
      ->capture_default_str();
  add_device_flag(cmd, o->device);
  return [o] { return run_upscale(*o); };
}

}  // namespace zflow::cli
