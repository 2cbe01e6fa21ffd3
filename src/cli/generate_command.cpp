// `zflow generate`: text-to-image, img2img (-i), inpaint (-i with --mask), editing with
// reference images (-r, FLUX.2 and FLUX.1 Kontext), ControlNet (--control-net, Z-Image and
// FLUX.1) and control images (--control-image: a ControlNet's, or FLUX.1 Canny / Depth's) with any
// model family, from a diffusers folder (-m) or separate component files, for one prompt (-p) or
// a file of them (--prompts, consecutive prompts joined into batched runs). Writes PNG (with
// A1111 `parameters` and the full request as JSON in text chunks), JPEG or WebP by the output's
// extension.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>

#include "cli/commands.h"
#include "cli/component_flags.h"
#include "core/error.h"
#include "core/log.h"
#include "core/thread_pool.h"
#include "io/image.h"
#include "pipeline/flux_controlnet_input.h"
#include "pipeline/generator.h"
#include "pipeline/outpaint.h"
#include "pipeline/upscale.h"
#include "sampling/flow_sampler.h"
#include "text/dynamic_prompt.h"
#include "text/prompt_styles.h"
#include "text/wildcard_folder.h"

namespace zflow::cli {

namespace {

namespace fs = std::filesystem;

struct GenerateOptions {
  std::string model_dir;
  ComponentFlags components;
  std::string prompt, negative_prompt;
  std::string prompts_file;         // --prompts: one prompt a line
  bool dynamic_prompts = false;     // -p / --prompts lines are Dynamic Prompts templates
  size_t random_prompts = 0;        // --random-prompts: that many drawn from each, else all
  std::string styles_file;          // --styles: an A1111 styles.csv
  std::vector<std::string> styles;  // --style: the names of its styles to add, in order
  std::string wildcards;            // --wildcards: their wildcard files' folder
  size_t max_prompts = 1000;        // --max-prompts: the most prompts the templates expand to
  std::optional<int> join_images;   // --join; unset: by device
  std::optional<int> width, height, steps;
  std::optional<float> cfg_scale, guidance;
  float cfg_normalization = 0.0f;
  double cfg_truncation = 1.0;
  std::optional<double> shift, strength;
  std::string sampler = "euler", scheduler = "simple";
  std::optional<float> first_block_cache;
  std::optional<double> hires_scale, hires_strength;
  std::optional<int> hires_steps;
  std::string hires_upscaler = "lanczos";
  std::string hires_model;  // --hires-model: the second pass on another model's folder
  std::optional<std::string> hires_prompt, hires_negative_prompt, hires_sampler, hires_scheduler;
  std::optional<float> hires_cfg_scale, hires_guidance;
  std::string upscale_model;  // --upscale-model: every picture upscaled by it at the end
  int upscale_repeats = 1;
  std::optional<int> mask_crop;
  std::optional<float> mask_blur;
  std::string masked_content;
  bool invert_mask = false;
  bool round_mask = false, overlay_original = false;
  std::string resize_mode = "stretch";
  std::optional<uint64_t> seed;
  std::optional<uint64_t> variation_seed;  // A1111's, used when variation_strength > 0
  float variation_strength = 0.0f;
  int batch = 1;
  bool seed_per_image = false;  // A1111's batches
  std::string init_image, mask;
  std::string outpaint;  // --outpaint margins
  std::vector<std::string> reference_images;
  std::optional<float> redux_strength;
  std::vector<std::string> controlnets;     // --control-net, repeatable (FLUX.1)
  std::vector<std::string> control_images;  // --control-image, repeatable
  // Each once (for every control image) or once per control image.
  std::vector<float> control_strengths;
  std::vector<double> control_starts, control_ends;
  std::vector<std::string> control_modes;  // NAME or N
  std::string output = "zflow.png";
  std::string preview_path;  // --preview-path: the first image's preview after every step
  int threads = 0;
  std::string device;            // --device; empty: the default
  std::string matmul_precision;  // --matmul-precision; empty: the default
  std::optional<size_t> max_sequence_length;
  std::string torch_rng = "avx2";
  bool vae_tiling = false;
  std::vector<std::string> loras;  // --lora PATH[:SCALE], in order
};

// The i-th of a flag's values given once for every control image or once per image; `count`
// images. An error names the flag when it is given another number of times.
template <typename T>
std::optional<T> per_control(const std::vector<T>& values, size_t i, size_t count,
                             const char* flag) {
  ZF_CHECK(values.size() <= 1 || values.size() == count,
           "[generate] {} is given {} times for {} control images: give it once, or once per "
           "--control-image",
           flag, values.size(), count);
  if (values.empty()) return std::nullopt;
  return values.size() == 1 ? values.front() : values[i];
}

// --control-image and its settings, image by image.
std::vector<pipeline::ControlInput> control_inputs(const GenerateOptions& o) {
  const size_t n = o.control_images.size();
  ZF_CHECK(n > 0 || (o.control_strengths.empty() && o.control_starts.empty() &&
                     o.control_ends.empty() && o.control_modes.empty()),
           "[generate] --control-strength, --control-start, --control-end and --control-mode "
           "need --control-image");
  std::vector<pipeline::ControlInput> controls;
  for (size_t i = 0; i < n; ++i) {
    pipeline::ControlInput c{io::read_image(o.control_images[i]),
                             per_control(o.control_strengths, i, n, "--control-strength"),
                             per_control(o.control_starts, i, n, "--control-start"),
                             per_control(o.control_ends, i, n, "--control-end"),
                             {}};
    if (const auto mode = per_control(o.control_modes, i, n, "--control-mode")) {
      c.mode = pipeline::flux_union_mode(*mode);
      ZF_CHECK(c.mode.has_value(), "[generate] --control-mode {}: expected a number or one of {}",
               *mode, pipeline::flux_union_modes());
    }
    controls.push_back(std::move(c));
  }
  return controls;
}

SamplingChoice sampling_choice(const std::string& sampler, const std::string& scheduler) {
  const auto solver = parse_flow_sampler(sampler);
  if (!solver)
    fail("[generate] --sampler {}: unknown sampler; zflow has {}", sampler, flow_sampler_choices());
  const auto spacing = parse_sigma_schedule(scheduler);
  if (!spacing)
    fail("[generate] --scheduler {}: unknown schedule; zflow has {}", scheduler,
         sigma_schedule_choices());
  return {*solver, *spacing};
}

// The hires fix the --hires-* flags ask for: any of them turns it on. An upscaler that is not a
// filter's name is an upscaler model file, loaded onto the device `files` run on; --hires-model is
// loaded as `files` say (device, --fp8, --offload), without their LoRAs.
std::optional<pipeline::HiresFix> hires_fix(const GenerateOptions& o,
                                            const pipeline::ModelFiles& files) {
  if (!o.hires_scale && !o.hires_strength && !o.hires_steps && o.hires_model.empty() &&
      !o.hires_prompt && !o.hires_negative_prompt && !o.hires_sampler && !o.hires_scheduler &&
      !o.hires_cfg_scale && !o.hires_guidance)
    return std::nullopt;
  pipeline::HiresFix h;
  if (o.hires_scale) h.scale = *o.hires_scale;
  if (o.hires_strength) h.strength = *o.hires_strength;
  h.steps = o.hires_steps;
  h.prompt = o.hires_prompt;
  h.negative_prompt = o.hires_negative_prompt;
  h.cfg_scale = o.hires_cfg_scale;
  h.guidance = o.hires_guidance;
  if (o.hires_sampler) {
    h.sampler = parse_flow_sampler(*o.hires_sampler);
    ZF_CHECK(h.sampler, "[generate] --hires-sampler {}: unknown sampler; zflow has {}",
             *o.hires_sampler, flow_sampler_choices());
  }
  if (o.hires_scheduler) {
    h.schedule = parse_sigma_schedule(*o.hires_scheduler);
    ZF_CHECK(h.schedule, "[generate] --hires-scheduler {}: unknown schedule; zflow has {}",
             *o.hires_scheduler, sigma_schedule_choices());
  }
  if (o.hires_upscaler == "nearest" || o.hires_upscaler == "lanczos") {
    h.upscaler =
        o.hires_upscaler == "nearest" ? io::ResampleFilter::Nearest : io::ResampleFilter::Lanczos;
  } else if (const auto latent = pipeline::parse_latent_upscale(o.hires_upscaler)) {
    h.latent_upscaler = latent;
  } else {
    h.upscale_model = load_upscale_model(o.hires_upscaler, "--hires-upscaler", files.device);
    h.upscale_model_name = fs::path(o.hires_upscaler).stem().string();
  }
  if (!o.hires_model.empty()) {
    h.model = pipeline::load_generator({.model_dir = o.hires_model,
                                        .device = files.device,
                                        .quantize = files.quantize,
                                        .offload = files.offload});
  }
  return h;
}

// The finished picture upscaled --upscale-repeats times by the --upscale-model, as
// stable-diffusion.cpp's --upscale-model does; the record says so with A1111's extras keys.
io::Image upscale_repeatedly(const models::Upscaler& model, io::Image image,
                             const GenerateOptions& o, pipeline::ImageRecord& record) {
  for (int i = 0; i < o.upscale_repeats; ++i) image = pipeline::upscale_image(model, image);
  const std::string name = fs::path(o.upscale_model).stem().string();
  const int factor = static_cast<int>(std::lround(std::pow(model.scale(), o.upscale_repeats)));
  record.parameters +=
      fmt::format(", Postprocess upscale by: {}, Postprocess upscaler: {}", factor, name);
  record.request["upscale"] = {{"model", name}, {"repeats", o.upscale_repeats}};
  return image;
}

// A preview written beside its path and renamed over it, so a viewer never reads half a file.
void write_preview(const fs::path& path, const io::Image& preview) {
  const fs::path partial = path.string() + ".partial.png";
  io::write_image(partial, preview);
  fs::rename(partial, path);
}

std::string lower_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

// The output path of image k: "%d" in the name is replaced by k; a batch without "%d" gets
// "_k" before the extension so no image overwrites another.
fs::path output_path(const std::string& pattern, int k, int batch) {
  const auto at = pattern.find("%d");
  if (at != std::string::npos) {
    std::string name = pattern;
    name.replace(at, 2, std::to_string(k));
    return name;
  }
  if (batch == 1) return pattern;
  const fs::path p(pattern);
  return p.parent_path() / fmt::format("{}_{}{}", p.stem().string(), k, p.extension().string());
}

// The prompts of a --prompts file: every line but blank ones and # comments, trimmed.
std::vector<std::string> read_prompts(const std::string& path) {
  std::ifstream in(path);
  ZF_CHECK(in.good(), "[generate] --prompts {}: cannot open the file", path);
  std::vector<std::string> prompts;
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    prompts.push_back(line.substr(first, line.find_last_not_of(" \t\r") - first + 1));
  }
  ZF_CHECK(!prompts.empty(), "[generate] --prompts {}: no prompts (one a line; # starts a comment)",
           path);
  return prompts;
}

// A request's prompt and negative prompt.
struct PromptPair {
  std::string prompt, negative;
};

// What the templates stand for (text/dynamic_prompt.h), template by template, as the Dynamic
// Prompts extension makes them, the negative prompt read as a template too. Random mode
// (--random-prompts N): N from each template, pair j (counted over all templates) drawn with
// seed + j, the seed its request gets. Combinatorial: every prompt with every negative prompt
// (positive varying slowest), at most --max-prompts in all (a warning says when that cuts the
// list short).
std::vector<PromptPair> expanded_prompts(const std::vector<std::string>& templates,
                                         const GenerateOptions& o, uint64_t seed) {
  const text::Wildcards wildcards =
      o.wildcards.empty() ? text::Wildcards{} : text::wildcard_folder(o.wildcards);
  std::vector<PromptPair> pairs;
  if (o.random_prompts > 0) {
    for (const std::string& t : templates) {
      const uint64_t first = seed + pairs.size();
      const std::vector<std::string> prompts =
          text::sample_dynamic_prompts(t, wildcards, first, o.random_prompts);
      const std::vector<std::string> negatives =
          text::sample_dynamic_prompts(o.negative_prompt, wildcards, first, o.random_prompts);
      for (size_t i = 0; i < prompts.size(); ++i) pairs.push_back({prompts[i], negatives[i]});
    }
    return pairs;
  }
  // One more than fits, to tell a cut list from one that ends there.
  const std::vector<std::string> negatives =
      text::expand_dynamic_prompt(o.negative_prompt, wildcards, o.max_prompts + 1);
  for (const std::string& t : templates) {
    for (const std::string& p :
         text::expand_dynamic_prompt(t, wildcards, o.max_prompts + 1 - pairs.size())) {
      for (const std::string& negative : negatives) {
        if (pairs.size() == o.max_prompts) {
          log::warn(
              "[generate] the templates stand for more than {} prompts; making the first {} "
              "(--max-prompts)",
              o.max_prompts, o.max_prompts);
          return pairs;
        }
        pairs.push_back({p, negative});
      }
    }
  }
  return pairs;
}

// Consecutive requests in runs of at most `max_images` images that share forwards.
std::vector<std::vector<pipeline::GenerationRequest>> join_runs(
    const pipeline::ImageGenerator& generator,
    const std::vector<pipeline::GenerationRequest>& requests, int max_images) {
  std::vector<std::vector<pipeline::GenerationRequest>> runs;
  int images = 0;
  for (const pipeline::GenerationRequest& r : requests) {
    if (runs.empty() || images + r.batch > max_images ||
        !generator.can_share_forwards(runs.back().front(), r)) {
      runs.emplace_back();
      images = 0;
    }
    runs.back().push_back(r);
    images += r.batch;
  }
  return runs;
}

// One line redrawn on a terminal: step count, a bar, speed and time left.
class ProgressBar {
 public:
  ProgressBar() : enabled_(isatty(fileno(stderr)) != 0) {}
  ~ProgressBar() {
    if (enabled_ && drawn_) std::fputc('\n', stderr);
  }
  void update(const pipeline::StepProgress& p) {
    if (!enabled_) return;
    constexpr int kWidth = 30;
    const int filled = p.steps > 0 ? kWidth * p.step / p.steps : kWidth;
    const double rate = p.elapsed_seconds > 0 ? p.step / p.elapsed_seconds : 0.0;
    const double eta = rate > 0 ? (p.steps - p.step) / rate : 0.0;
    const std::string speed = rate >= 1.0 || rate == 0.0 ? fmt::format("{:.2f} it/s", rate)
                                                         : fmt::format("{:.2f} s/it", 1.0 / rate);
    fmt::print(stderr, "\rstep {}/{} [{}{}] {}, ETA {:.1f}s   ", p.step, p.steps,
               std::string(static_cast<size_t>(filled), '='),
               std::string(static_cast<size_t>(kWidth - filled), ' '), speed, eta);
    std::fflush(stderr);
    drawn_ = true;
  }

 private:
  bool enabled_;
  bool drawn_ = false;
};

// The --style styles of --styles, in the order given.
std::vector<text::PromptStyle> chosen_styles(const GenerateOptions& o) {
  if (o.styles.empty()) return {};
  ZF_CHECK(!o.styles_file.empty(), "[generate] --style needs --styles FILE (an A1111 styles.csv)");
  const std::vector<text::PromptStyle> all = text::read_prompt_styles(o.styles_file);
  std::vector<text::PromptStyle> chosen;
  for (const std::string& name : o.styles) {
    const text::PromptStyle* style = text::find_prompt_style(all, name);
    if (!style) {
      std::vector<std::string> names;
      for (const text::PromptStyle& s : all) names.push_back(s.name);
      fail("[generate] --style {}: not a style of {} (it has: {})", name, o.styles_file,
           fmt::join(names, ", "));
    }
    chosen.push_back(*style);
  }
  return chosen;
}

int run_generate(const GenerateOptions& given) {
  // The options with the --style styles added to every prompt they hold.
  const std::vector<text::PromptStyle> styles = chosen_styles(given);
  const auto positive = &text::PromptStyle::prompt, negative = &text::PromptStyle::negative_prompt;
  GenerateOptions o = given;
  o.prompt = text::with_styles(o.prompt, styles, positive);
  o.negative_prompt = text::with_styles(o.negative_prompt, styles, negative);
  if (o.hires_prompt) o.hires_prompt = text::with_styles(*o.hires_prompt, styles, positive);
  if (o.hires_negative_prompt)
    o.hires_negative_prompt = text::with_styles(*o.hires_negative_prompt, styles, negative);
  const std::string ext = lower_extension(o.output);
  if (ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".webp")
    fail("[generate] -o {}: unknown image format '{}', expected .png, .jpg or .webp", o.output,
         ext);
  ZF_CHECK(o.preview_path.empty() || lower_extension(o.preview_path) == ".png",
           "[generate] --preview-path {}: previews are PNG files, expected a .png name",
           o.preview_path);
  // A reference image is something to draw from: Redux makes variations of it with no prompt.
  ZF_CHECK(!o.prompt.empty() || !o.prompts_file.empty() || !o.reference_images.empty(),
           "[generate] nothing to draw: give -p PROMPT, --prompts FILE or -r IMAGE");
  if (o.model_dir.empty() && o.components.diffusion_model.empty())
    fail(
        "[generate] no model: give -m DIR (a diffusers folder) or --diffusion-model FILE with "
        "its text encoder, tokenizer and VAE files");
  if (o.threads > 0) ThreadPool::set_compute_threads(o.threads);
  apply_matmul_precision(o.matmul_precision);

  pipeline::GenerationRequest request;
  request.prompt = o.prompt;
  request.negative_prompt = o.negative_prompt;
  request.width = o.width;
  request.height = o.height;
  request.steps = o.steps;
  request.cfg_scale = o.cfg_scale;
  request.guidance = o.guidance;
  request.cfg_normalization = o.cfg_normalization;
  request.cfg_truncation = o.cfg_truncation;
  request.shift = o.shift;
  request.sampling = sampling_choice(o.sampler, o.scheduler);
  request.first_block_cache = o.first_block_cache;
  request.strength = o.strength;
  request.mask_crop_padding = o.mask_crop;
  request.mask_blur = o.mask_blur;
  request.batch = o.batch;
  request.seed_per_image = o.seed_per_image;
  request.max_sequence_length = o.max_sequence_length;
  request.normal_math = o.torch_rng == "avx2" ? NormalMath::Avx2Cephes : NormalMath::Libm;
  request.vae_tiling = o.vae_tiling;
  // torch seeds its CPU generator with the low 32 bits only, so a random seed is drawn there.
  request.seed = o.seed ? *o.seed : std::random_device{}();
  if (o.variation_strength > 0.0f)
    request.variation = pipeline::VariationSeed{
        o.variation_seed ? *o.variation_seed : std::random_device{}(), o.variation_strength};
  if (!o.init_image.empty()) request.init_image = io::read_image(o.init_image);
  if (!o.mask.empty()) request.mask = io::read_image(o.mask);
  std::string mask_source = o.mask;
  if (!o.outpaint.empty()) {
    const auto margins = pipeline::parse_outpaint_margins(o.outpaint, "--outpaint");
    ZF_CHECK(!o.init_image.empty(), "[generate] --outpaint {} needs -i PICTURE to grow",
             o.outpaint);
    ZF_CHECK(o.mask.empty(), "[generate] --outpaint makes its own mask: drop --mask {}", o.mask);
    mask_source =
        "outpaint " + pipeline::format_outpaint_margins(pipeline::apply_outpaint(request, margins));
  }
  if (o.resize_mode != "stretch") {
    ZF_CHECK(!o.init_image.empty(), "[generate] --resize-mode {} needs -i", o.resize_mode);
    request.resize_mode =
        o.resize_mode == "crop" ? pipeline::ResizeMode::Crop : pipeline::ResizeMode::Fill;
  }
  for (const auto& [flag, on] : {std::pair{"--round-mask", o.round_mask},
                                 std::pair{"--overlay-original", o.overlay_original}})
    ZF_CHECK(!on || request.mask, "[generate] {} shapes inpainting: give --mask too", flag);
  request.round_mask = o.round_mask;
  request.overlay_original = o.overlay_original;
  if (o.invert_mask) {
    ZF_CHECK(!o.mask.empty(), "[generate] --invert-mask needs --mask");
    request.invert_mask = true;
  }
  if (!o.masked_content.empty()) {
    ZF_CHECK(request.mask, "[generate] --masked-content {} needs --mask or --outpaint",
             o.masked_content);
    request.masked_content = *pipeline::parse_masked_content(o.masked_content);
  }
  for (const std::string& file : o.reference_images)
    request.reference_images.push_back(io::read_image(file));
  request.redux_strength = o.redux_strength;
  ZF_CHECK(o.controlnets.empty() || !o.control_images.empty(),
           "[generate] --control-net {} needs --control-image IMAGE (edges, depth, pose, ...)",
           o.controlnets.front());
  request.controls = control_inputs(o);

  pipeline::ModelFiles files = o.components.files(o.model_dir);
  files.device = resolve_device(o.device);
  request.hires = hires_fix(o, files);
  const std::shared_ptr<const models::Upscaler> upscaler =
      o.upscale_model.empty()
          ? nullptr
          : load_upscale_model(o.upscale_model, "--upscale-model", files.device);
  files.controlnets.assign(o.controlnets.begin(), o.controlnets.end());
  for (const std::string& argument : o.loras) {  // checked before any model loads
    const models::LoraFile lora = models::parse_lora_argument(argument);
    ZF_CHECK(fs::is_regular_file(lora.path), "[lora] --lora {}: no such LoRA file", argument);
    files.loras.push_back(lora);
  }
  // -p, or one request per line of --prompts, prompt i with seed + i (and variation seed + i, as
  // A1111 counts subseeds): what -p with those seeds makes.
  std::vector<std::string> lines = {o.prompt};
  if (!o.prompts_file.empty()) {
    lines = read_prompts(o.prompts_file);
    for (std::string& line : lines) line = text::with_styles(line, styles, positive);
  }
  std::vector<PromptPair> prompts;
  if (o.dynamic_prompts || o.random_prompts > 0 || !o.wildcards.empty()) {
    prompts = expanded_prompts(lines, o, request.seed);
  } else {
    for (const std::string& line : lines) prompts.push_back({line, o.negative_prompt});
  }
  std::vector<pipeline::GenerationRequest> requests;
  for (size_t i = 0; i < prompts.size(); ++i) {
    pipeline::GenerationRequest r = request;
    r.prompt = prompts[i].prompt;
    r.negative_prompt = prompts[i].negative;
    r.seed = request.seed + i;
    if (r.variation) r.variation->seed += i;
    requests.push_back(std::move(r));
  }
  const auto generator = pipeline::load_generator(files);
  generator->resolve(requests.front());
  fmt::print("seed {}{}\n", request.seed, prompts.size() > 1 ? " (prompt i: seed + i)" : "");
  std::fflush(stdout);

  // A GPU runs a batch of four in far less time than four runs; a CPU does not.
  const int join = o.join_images.value_or(files.device == Device::CUDA ? 4 : 1);
  const pipeline::ImageSources sources{o.init_image, mask_source, o.reference_images,
                                       o.control_images};
  const int total_images = o.batch * static_cast<int>(requests.size());
  int written = 0;
  for (const auto& run : join_runs(*generator, requests, join)) {
    if (prompts.size() > 1)
      fmt::print("prompts {}-{} of {}\n", written / o.batch + 1, written / o.batch + run.size(),
                 prompts.size());
    std::vector<std::vector<io::Image>> images;
    {
      ProgressBar bar;
      pipeline::RunControl control;
      control.on_step = [&bar](const pipeline::StepProgress& p) { bar.update(p); };
      if (!o.preview_path.empty())
        control.on_preview = [&o](const std::vector<io::Image>& previews) {
          write_preview(o.preview_path, previews.front());
        };
      images = generator->generate_together(run, control);
    }
    for (size_t r = 0; r < run.size(); ++r) {
      for (int k = 0; k < static_cast<int>(images[r].size()); ++k) {
        const fs::path path = output_path(o.output, written++, total_images);
        pipeline::ImageRecord record = generator->record(run[r], sources, k);
        io::Image& image = images[r][static_cast<size_t>(k)];
        if (upscaler) image = upscale_repeatedly(*upscaler, image, o, record);
        const io::PngText text = {{"parameters", record.parameters},
                                  {"zflow_request", record.request.dump()}};
        io::write_image(path, image, text);
        fmt::print("wrote {}\n", path.string());
      }
    }
  }
  return 0;
}

}  // namespace

Run add_generate_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "make images with a Z-Image or FLUX model");
  auto o = std::make_shared<GenerateOptions>();
  cmd->add_option("-m,--model", o->model_dir, "a diffusers folder (model_index.json)");
  add_component_flags(cmd, o->components, " (overrides -m's)");
  auto* prompt = cmd->add_option("-p,--prompt", o->prompt, "what to draw");
  cmd->add_option("--prompts", o->prompts_file,
                  "a text file of prompts, one a line (blank lines and # comments skipped): -b "
                  "images of each, prompt i with seed + i; images numbered in order")
      ->excludes(prompt);
  auto* dynamic = cmd->add_flag(
      "--dynamic-prompts", o->dynamic_prompts,
      "read -p (or each --prompts line) and -n as Dynamic Prompts templates and make every "
      "prompt they stand for, prompt i with seed + i: {red|blue} picks one option, {2$$a|b|c} "
      "two in every order, __name__ a line of the --wildcards file name.txt (the A1111 "
      "extension's syntax and combinatorial order; every prompt with every negative prompt)");
  cmd->add_option("--random-prompts", o->random_prompts,
                  "read -p (or each --prompts line) and -n as Dynamic Prompts templates and draw "
                  "N prompts from each, prompt i and its request from seed + i (the A1111 "
                  "extension's random mode: the same picks as it makes for those seeds)")
      ->check(CLI::PositiveNumber)
      ->excludes(dynamic);
  cmd->add_option("--wildcards", o->wildcards,
                  "the folder of wildcard files for __name__ in a template (implies "
                  "--dynamic-prompts unless --random-prompts)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--styles", o->styles_file,
                  "an A1111 styles.csv (name, prompt, negative_prompt) for --style")
      ->check(CLI::ExistingFile);
  cmd->add_option(
      "--style", o->styles,
      "add this style of --styles to the prompts (repeatable, in order: its text with "
      "{prompt} in it takes the prompt there, else follows it after \", \"; its negative "
      "prompt likewise), as A1111 adds prompt styles");
  cmd->add_option("--max-prompts", o->max_prompts,
                  "with --dynamic-prompts: make at most this many prompts, in order")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--join", o->join_images,
                  "with --prompts: up to N images of consecutive prompts in one batched run, each "
                  "prompt's images the ones it makes alone (default: 4 on a GPU, 1 on the CPU)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("-n,--negative-prompt", o->negative_prompt,
                  "what to steer away from (CFG; FLUX.1 uses it only with --cfg-scale above 1)");
  cmd->add_option("-W,--width", o->width,
                  "image width, a multiple of 16 (default 1024, or the init, control or reference "
                  "image's)");
  cmd->add_option("-H,--height", o->height, "image height, a multiple of 16 (default as -W)");
  cmd->add_option("--steps", o->steps,
                  "sampling steps (default: the model's: Z-Image Turbo 8, Base 50; FLUX.1-dev 28, "
                  "schnell 4, Fill 50; FLUX.2 klein 4, base and dev 50)");
  cmd->add_option("--cfg-scale", o->cfg_scale,
                  "Z-Image guidance g: pred = pos + g (pos - neg); 0 turns CFG off "
                  "(default: Turbo 0, Base 4). FLUX.1 true CFG s > 1: pred = neg + s (pos - neg) "
                  "with neg from -n or the empty prompt, two passes per step (default 1: none)");
  cmd->add_option(
      "--guidance", o->guidance,
      "guidance embedded in the model (FLUX.1-dev: default 3.5, FLUX.2-dev: 4); not for Z-Image "
      "or FLUX.2 klein");
  cmd->add_option("--cfg-normalization", o->cfg_normalization,
                  "cap the guided prediction's norm at K times the positive one's; K = 1 when "
                  "given without a value (default: off)")
      ->expected(0, 1)
      ->default_str("1");
  cmd->add_option("--cfg-truncation", o->cfg_truncation,
                  "run CFG only while 1 - sigma <= this (default 1: every step)");
  cmd->add_option("--shift", o->shift,
                  "sigma schedule shift (default: the model's: Z-Image 3 or 6; FLUX.1-dev shifts "
                  "by image size, schnell none); for FLUX.1 a fixed shift in their place");
  cmd->add_option(
         "--sampler", o->sampler,
         "how each step moves the latents: euler (the models' own, one model call a "
         "step), heun (two calls a step, second order), dpm++2m (one call, second order "
         "from the step before), res_multistep (ComfyUI's, its Z-Image default: second order, "
         "one call), euler_a and lcm (fresh noise every step, from seed + 1 as ComfyUI draws "
         "it); ComfyUI's and A1111's names work too")
      ->capture_default_str();
  cmd->add_option("--scheduler", o->scheduler,
                  "the sigmas' spacing between the model's first and last: simple (the model's "
                  "shifted schedule), karras, exponential or beta (diffusers' use_*_sigmas)")
      ->capture_default_str();
  cmd->add_option("--first-block-cache", o->first_block_cache,
                  "skip the transformer's later blocks on steps where its first block's output "
                  "changed by at most this fraction since the last full step, reusing what they "
                  "added then (diffusers' FirstBlockCache; Z-Image and FLUX.1; 0.05-0.2 trades "
                  "a little detail for up to about twice the speed on long schedules)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--hires-scale", o->hires_scale,
                  "hires fix: make the picture at -W x -H, upscale it by this (to whole 16-pixel "
                  "tokens) and repaint it there by img2img (A1111's hires fix; default 2 when "
                  "another --hires flag is given)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--hires-strength", o->hires_strength,
                  "hires fix: how much of the upscaled picture the second pass repaints, 0-1 "
                  "(default 0.6)");
  cmd->add_option("--hires-steps", o->hires_steps,
                  "hires fix: the second pass's steps (default: --steps)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--hires-upscaler", o->hires_upscaler,
                  "hires fix: how the picture is upscaled: lanczos, nearest, an upscaler model "
                  "file (ESRGAN, Real-ESRGAN Compact or SPAN: RealESRGAN_x4plus, 4x-UltraSharp, "
                  "realesr-general-x4v3, ...: run until the hires size is "
                  "covered, then Lanczos to it), or A1111's latent upscalers, which resize the "
                  "latents (Z-Image, FLUX.1): latent (bilinear), latent-antialiased, "
                  "latent-bicubic, latent-bicubic-antialiased, latent-nearest, "
                  "latent-nearest-exact")
      ->capture_default_str();
  cmd->add_option("--hires-model", o->hires_model,
                  "hires fix: repaint with another model's diffusers folder (A1111's hires "
                  "checkpoint: draft with Z-Image-Turbo, repaint with FLUX.1-dev), which takes its "
                  "own defaults for steps, CFG and guidance unless the --hires flags set them; a "
                  "latent upscaler hands Z-Image latents to FLUX.1 and back (one latent space)")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--hires-prompt", o->hires_prompt,
                  "hires fix: the second pass's prompt (default: -p)");
  cmd->add_option("--hires-negative-prompt", o->hires_negative_prompt,
                  "hires fix: the second pass's negative prompt (default: -n, where the second "
                  "pass's model uses one)");
  cmd->add_option("--hires-sampler", o->hires_sampler,
                  "hires fix: the second pass's sampler (default: --sampler)");
  cmd->add_option("--hires-scheduler", o->hires_scheduler,
                  "hires fix: the second pass's sigma schedule (default: --scheduler)");
  cmd->add_option("--hires-cfg-scale", o->hires_cfg_scale,
                  "hires fix: the second pass's --cfg-scale (default: --cfg-scale, or with "
                  "--hires-model that model's)");
  cmd->add_option("--hires-guidance", o->hires_guidance,
                  "hires fix: the second pass's --guidance (default: --guidance, or with "
                  "--hires-model that model's img2img default: FLUX.1-dev 7, as diffusers)");
  cmd->add_option("--preview-path", o->preview_path,
                  "after every step, write a small preview of the first image to this PNG "
                  "(stable-diffusion.cpp's flag): the current estimate of the picture, decoded "
                  "from its latents at most 16 cells a side");
  cmd->add_option(
         "--upscale-model", o->upscale_model,
         "upscale every finished picture with this upscaler model file (safetensors or .pth: "
         "ESRGAN, Real-ESRGAN, BSRGAN, Real-ESRGAN Compact, SPAN), in 512-pixel tiles")
      ->check(CLI::ExistingFile);
  cmd->add_option("--upscale-repeats", o->upscale_repeats,
                  "how many times --upscale-model runs on each picture")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "random seed (default: random; always printed)");
  cmd->add_option("--variation-seed", o->variation_seed,
                  "A1111's variation seed: bend the start noise towards this seed's (default: "
                  "random; with --variation-strength)");
  cmd->add_option("--variation-strength", o->variation_strength,
                  "how far towards the variation seed's noise, 0-1: small values keep the "
                  "picture's composition and vary its details, 1 is the variation seed's picture")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("-b,--batch", o->batch,
                  "images in one batch (their noise drawn from --seed's generator together, as "
                  "diffusers and ComfyUI draw it)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--seed-per-image", o->seed_per_image,
                "image k of the batch from seed + k instead, as A1111 and stable-diffusion.cpp "
                "seed a batch: any image made again alone with its seed (one batched run still)");
  cmd->add_option("-i,--init-image", o->init_image, "start from this image (img2img)");
  cmd->add_option("--mask", o->mask, "inpaint the white part of this mask (needs -i)");
  cmd->add_option("--mask-crop", o->mask_crop,
                  "inpaint only the masked area: the box around the mask plus this many pixels, "
                  "brought to the output size (-W/-H, default the picture's), then pasted back "
                  "into the whole picture (diffusers' padding_mask_crop, A1111's 'Only masked')")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--mask-blur", o->mask_blur,
                  "soften the mask first: Pillow's Gaussian blur of this radius in pixels "
                  "(diffusers' mask_processor.blur; A1111's mask blur)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--resize-mode", o->resize_mode,
                  "an -i picture of another aspect ratio than -W x -H: stretch (the default), "
                  "crop (cover, cut the excess) or fill (fit, stretch the edges into the bands): "
                  "A1111's just resize / crop and resize / resize and fill")
      ->check(CLI::IsMember({"stretch", "crop", "fill"}));
  cmd->add_flag("--round-mask", o->round_mask,
                "inpaint: round the mask to black and white (grey above 128 white) before "
                "inverting and blurring it, as A1111 does");
  cmd->add_flag("--overlay-original", o->overlay_original,
                "inpaint: lay the picture back over the result wherever the mask leaves it, as "
                "A1111 does after every inpaint, so the rest keeps its exact pixels instead of "
                "coming back through the VAE");
  cmd->add_flag("--invert-mask", o->invert_mask,
                "repaint what the mask leaves black instead of its white part (A1111's 'Inpaint "
                "not masked')");
  cmd->add_option("--masked-content", o->masked_content,
                  "what the masked area starts from (A1111's masked content): original (the "
                  "default), fill (painted over with its surroundings' colours), latent-noise or "
                  "latent-nothing (fill, then the masked latents replaced by noise or zero)")
      ->check(CLI::IsMember({"original", "fill", "latent-noise", "latent-nothing"}));
  cmd->add_option("--outpaint", o->outpaint,
                  "grow the -i picture by these margins and draw them: N pixels on every side, "
                  "or LEFT,TOP,RIGHT,BOTTOM (the canvas is widened to whole 16-pixel tokens; "
                  "strength defaults to 1)");
  cmd->add_option("-r,--ref-image", o->reference_images,
                  "a reference image to edit or draw from (FLUX.2: repeatable, the first sets "
                  "the default size; FLUX.1 Kontext: one, made at its Kontext resolution; Redux: "
                  "repeatable, each picture's tokens in turn; Z-Image Omni: repeatable, the last "
                  "sets the default size)");
  cmd->add_option("--redux-strength", o->redux_strength,
                  "FLUX.1 Redux: the weight of its image tokens (default 1; lower lets the prompt "
                  "steer more)");
  cmd->add_option("--control-net", o->controlnets,
                  "a ControlNet: Z-Image's (VideoX-Fun Union 1.0 / 2.x file, or a diffusers "
                  "folder) or FLUX.1's (InstantX / Shakker-Labs / XLabs: a diffusers folder or "
                  "file; repeatable: side by side, one --control-image each)");
  cmd->add_option(
      "--control-image", o->control_images,
      "the ControlNet's input (canny edges, depth, pose, ...; with -i and --mask a 2.x "
      "ControlNet inpaints), or what FLUX.1 Canny-dev / Depth-dev draw from (an edge or depth "
      "map)");
  cmd->add_option("--control-strength", o->control_strengths,
                  "the weight of the ControlNet's hints (default: Z-Image 0.75, FLUX.1 1); this "
                  "and the next three: once for every control image, or once per image in order");
  cmd->add_option("--control-start", o->control_starts,
                  "FLUX.1 ControlNet: the fraction of the steps before it starts acting "
                  "(default 0)");
  cmd->add_option("--control-end", o->control_ends,
                  "FLUX.1 ControlNet: the fraction of the steps after which it stops (default 1)");
  cmd->add_option("--control-mode", o->control_modes,
                  "FLUX.1 Union ControlNet: what the control image is, a number or a name of "
                  "InstantX's and Shakker-Labs' table (" +
                      pipeline::flux_union_modes() + ")");
  cmd->add_option("--strength", o->strength,
                  "how much of the init image to repaint, 0-1 (default 0.6, inpaint 1)");
  cmd->add_option("--max-sequence-length", o->max_sequence_length,
                  "prompt tokens kept (default: Z-Image 512 with the chat template)");
  cmd->add_option("-o,--output", o->output,
                  "output .png, .jpg or .webp; %d numbers the images (of a batch, or of all "
                  "prompts)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "CPU threads (default: all)");
  add_device_flag(cmd, o->device);
  add_matmul_precision_flag(cmd, o->matmul_precision);
  cmd->add_option("--lora", o->loras,
                  "a LoRA file (safetensors: PEFT / diffusers, kohya or ComfyUI names) merged into "
                  "the transformer at load, PATH or PATH:SCALE (default scale 1); repeatable, "
                  "applied in order");
  cmd->add_flag("--vae-tiling", o->vae_tiling,
                "encode and decode in overlapping 1024-pixel tiles (diffusers' enable_tiling): "
                "2048² and larger "
                "in the memory of one tile");
  cmd->add_option("--torch-rng", o->torch_rng,
                  "whose torch.randn a seed reproduces: avx2 (torch on an AVX2 CPU) or libm "
                  "(torch on an AVX-512 or non-x86 CPU); see core/rng.h")
      ->check(CLI::IsMember({"avx2", "libm"}))
      ->capture_default_str();
  return [o] { return run_generate(*o); };
}

}  // namespace zflow::cli
