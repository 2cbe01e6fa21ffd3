#include "pipeline/hires_fix.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "pipeline/upscale.h"

namespace zflow::pipeline {

namespace {

constexpr int kMultiple = 16;  // the pixels of one latent token, every family's

std::string upscaler_name(const HiresFix& hires) {
  if (hires.upscale_model) return hires.upscale_model_name;
  if (hires.latent_upscaler) return std::string(latent_upscale_name(*hires.latent_upscaler));
  return hires.upscaler == io::ResampleFilter::Nearest ? "Nearest" : "Lanczos";
}

io::Image upscaled(const HiresFix& hires, const io::Image& draft, int width, int height) {
  if (hires.upscale_model) return upscale_image_to(*hires.upscale_model, draft, width, height);
  return io::resize_image(draft, width, height, hires.upscaler);
}

class HiresFixGenerator final : public ImageGenerator {
 public:
  explicit HiresFixGenerator(std::unique_ptr<ImageGenerator> inner) : inner_(std::move(inner)) {}

  const std::string& model_name() const override { return inner_->model_name(); }
  std::string architecture() const override { return inner_->architecture(); }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    if (!request.hires) return inner_->resolve(request);
    return plan(as_run(request)).total;
  }

  std::vector<io::Image> generate(const GenerationRequest& request,
                                  const RunControl& control) const override {
    return std::move(generate_together({&request, 1}, control).front());
  }

  bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const override {
    return !a.hires && !b.hires && inner_->can_share_forwards(a, b);
  }

  std::vector<std::vector<io::Image>> generate_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const override {
    if (requests.size() != 1 || !requests.front().hires)
      return inner_->generate_together(requests, control);
    const GenerationRequest request = as_run(requests.front());
    const Plan p = plan(request);
    const RunControl first_control = counted(control, 0, p.total.steps_run);
    auto second_control = [&](size_t k) {
      return counted(control, p.first_steps + static_cast<int>(k) * p.second_steps,
                     p.total.steps_run);
    };
    std::vector<io::Image> out;
    if (const auto mode = request.hires->latent_upscaler) {
      // A1111's latent upscale: the first pass's latents resized to the hires grid.
      std::vector<Tensor> drafts = inner_->generate_latents(first_pass(request), first_control);
      for (size_t k = 0; k < drafts.size(); ++k) {
        const int64_t cell = p.first_width / drafts[k].size(3);  // pixels per latent cell
        GenerationRequest second =
            second_pass(request, p.total.width, p.total.height, static_cast<int>(k));
        second.init_latents =
            upscale_latents(drafts[k], p.total.height / cell, p.total.width / cell, *mode);
        out.push_back(inner_->generate(second, second_control(k)).front());
      }
      return {std::move(out)};
    }
    std::vector<io::Image> drafts = inner_->generate(first_pass(request), first_control);
    for (size_t k = 0; k < drafts.size(); ++k) {
      GenerationRequest second =
          second_pass(request, p.total.width, p.total.height, static_cast<int>(k));
      second.init_image = upscaled(*request.hires, drafts[k], p.total.width, p.total.height);
      drafts[k] = io::Image{};  // keep one draft at a time beside the big pictures
      out.push_back(inner_->generate(second, second_control(k)).front());
    }
    return {std::move(out)};
  }

  bool hands_over_latents() const override { return inner_->hands_over_latents(); }
  std::vector<Tensor> generate_latents(const GenerationRequest& request,
                                       const RunControl& control) const override {
    ZF_CHECK(!request.hires, "[hires] the hires fix hands over pictures, not latents");
    return inner_->generate_latents(request, control);
  }

  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    if (!request.hires) return inner_->record(request, sources, batch_index);
    const GenerationRequest run = as_run(request);
    const HiresFix& h = *run.hires;
    const Plan p = plan(run);
    ImageRecord r = inner_->record(first_pass(run), sources, batch_index);
    // A1111's infotext keys for its hires fix.
    r.parameters += fmt::format(", Denoising strength: {}, Hires resize: {}x{}", h.strength,
                                p.total.width, p.total.height);
    if (h.steps) r.parameters += fmt::format(", Hires steps: {}", *h.steps);
    r.parameters += fmt::format(", Hires upscaler: {}", upscaler_name(h));
    r.request["hires"] = {{"width", p.total.width},
                          {"height", p.total.height},
                          {"strength", h.strength},
                          {"upscaler", upscaler_name(h)},
                          {"seed", request.seed + static_cast<uint64_t>(batch_index)}};
    if (h.steps) r.request["hires"]["steps"] = *h.steps;
    return r;
  }

 private:
  struct Plan {
    GenerationSettings total;  // the final size; steps_run counts both passes
    int first_steps = 0, second_steps = 0;
    int first_width = 0;  // the first pass's
  };

  // The request as it runs here: a latent upscaler that was only a default gives way to the pixel
  // upscaler where the model cannot hand over its latents.
  GenerationRequest as_run(const GenerationRequest& r) const {
    GenerationRequest run = r;
    if (run.hires->latent_by_default && !inner_->hands_over_latents())
      run.hires->latent_upscaler.reset();
    return run;
  }

  static GenerationRequest first_pass(const GenerationRequest& r) {
    GenerationRequest first = r;
    first.hires.reset();
    return first;
  }

  // Image k's second pass at width x height, with seed + k: img2img from the upscaled picture or
  // latents the caller sets. Control images stay: they steer both passes (A1111's ControlNet
  // extension does the same), each pass fitting them to its own size.
  static GenerationRequest second_pass(const GenerationRequest& r, int width, int height, int k) {
    GenerationRequest second = first_pass(r);
    second.width = width;
    second.height = height;
    if (r.hires->steps) second.steps = r.hires->steps;
    second.strength = r.hires->strength;
    second.seed = r.seed + static_cast<uint64_t>(k);
    if (second.variation)
      second.variation->seed += static_cast<uint64_t>(k);  // A1111's subseed + k
    second.batch = 1;
    return second;
  }

  // Both passes checked before anything runs, so a request the second cannot serve fails first.
  Plan plan(const GenerationRequest& r) const {
    ZF_CHECK(!r.init_image && !r.mask,
             "[hires] the hires fix follows text-to-image: no init image or mask (img2img "
             "already works at the size asked for)");
    ZF_CHECK(r.hires->strength > 0.0 && r.hires->strength <= 1.0,
             "[hires] strength must be in (0, 1], got {}", r.hires->strength);
    ZF_CHECK(!r.hires->steps || *r.hires->steps >= 1, "[hires] steps must be at least 1, got {}",
             r.hires->steps.value_or(0));
    ZF_CHECK(!r.hires->latent_upscaler || inner_->hands_over_latents(),
             "[hires] {} resizes latents, which {} cannot hand over (Z-Image and FLUX.1 can); "
             "name a pixel upscaler (Lanczos, Nearest or an upscaler model)",
             upscaler_name(*r.hires), inner_->architecture());
    const GenerationSettings first = inner_->resolve(first_pass(r));
    const auto [width, height] = hires_size(*r.hires, first.width, first.height);
    // The second pass checked as an img2img from a picture: one from latents runs the same.
    GenerationRequest second_request = second_pass(r, width, height, 0);
    second_request.init_image =
        io::Image{width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
    const GenerationSettings second = inner_->resolve(second_request);
    Plan p{first, first.steps_run, second.steps_run, first.width};
    p.total.mode += " + hires fix";
    p.total.width = width;
    p.total.height = height;
    p.total.steps_run = first.steps_run + r.batch * second.steps_run;
    return p;
  }

  // `control` with its progress counted over both passes: `done` steps before this run's.
  static RunControl counted(const RunControl& control, int done, int total) {
    RunControl c = control;
    if (control.on_step)
      c.on_step = [on_step = control.on_step, done, total](const StepProgress& p) {
        on_step({done + p.step, total, p.elapsed_seconds});
      };
    return c;
  }

  std::unique_ptr<ImageGenerator> inner_;
};

}  // namespace

std::pair<int, int> hires_size(const HiresFix& hires, int width, int height) {
  ZF_CHECK(width > 0 && height > 0, "[hires] the first picture is {}x{}", width, height);
  double w = hires.width, h = hires.height;
  if (w > 0 && h <= 0) h = std::floor(w * height / width);
  if (h > 0 && w <= 0) w = std::floor(h * width / height);
  if (w <= 0 && h <= 0) {
    ZF_CHECK(hires.scale > 0.0 && std::isfinite(hires.scale),
             "[hires] scale must be a positive number, got {}", hires.scale);
    w = std::floor(width * hires.scale);
    h = std::floor(height * hires.scale);
  }
  const int out_w = static_cast<int>(w) / kMultiple * kMultiple;
  const int out_h = static_cast<int>(h) / kMultiple * kMultiple;
  ZF_CHECK(out_w >= kMultiple && out_h >= kMultiple,
           "[hires] the hires size {}x{} is under one {}-pixel token", static_cast<int>(w),
           static_cast<int>(h), kMultiple);
  return {out_w, out_h};
}

std::unique_ptr<ImageGenerator> with_hires_fix(std::unique_ptr<ImageGenerator> inner) {
  return std::make_unique<HiresFixGenerator>(std::move(inner));
}

}  // namespace zflow::pipeline
