#include "pipeline/hires_fix.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "pipeline/seed_per_image.h"
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

io::Image blank_picture(int width, int height) {
  return {width, height, std::vector<uint8_t>(static_cast<size_t>(width) * height * 3)};
}

// An infotext value as A1111's quote() writes it: as it is, or as a JSON string where a comma,
// colon or line break would split it.
std::string quoted(const std::string& text) {
  if (text.find_first_of(",:\n") == std::string::npos) return text;
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
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
    std::vector<GenerationRequest> seconds;  // image k's second pass
    if (const auto mode = request.hires->latent_upscaler) {
      // A1111's latent upscale: the first pass's latents resized to the hires grid.
      std::vector<Tensor> drafts = inner_->generate_latents(first_pass(request), first_control);
      for (size_t k = 0; k < drafts.size(); ++k) {
        const int64_t cell = p.first_width / drafts[k].size(3);  // pixels per latent cell
        GenerationRequest& second = seconds.emplace_back(
            second_pass(request, p.total.width, p.total.height, static_cast<int>(k)));
        second.init_latents =
            upscale_latents(drafts[k], p.total.height / cell, p.total.width / cell, *mode);
      }
    } else {
      std::vector<io::Image> drafts = inner_->generate(first_pass(request), first_control);
      for (size_t k = 0; k < drafts.size(); ++k) {
        GenerationRequest& second = seconds.emplace_back(
            second_pass(request, p.total.width, p.total.height, static_cast<int>(k)));
        second.init_image = upscaled(*request.hires, drafts[k], p.total.width, p.total.height);
        drafts[k] = io::Image{};  // each draft let go once it is upscaled
      }
    }
    return {repaint(second_model(request), seconds, p, control)};
  }

  std::optional<LatentSpace> latent_space() const override { return inner_->latent_space(); }
  std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                const RunControl& control) const override {
    ZF_CHECK(std::none_of(requests.begin(), requests.end(),
                          [](const GenerationRequest& r) { return r.hires.has_value(); }),
             "[hires] the hires fix hands over pictures, not latents");
    return inner_->generate_latents_together(requests, control);
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
    nlohmann::json& j = r.request["hires"];
    j = {{"width", p.total.width},
         {"height", p.total.height},
         {"strength", h.strength},
         {"upscaler", upscaler_name(h)},
         {"seed", image_request(run, batch_index).seed}};
    if (h.steps) j["steps"] = *h.steps;
    // What the second pass did differently, under A1111's and Forge's infotext keys.
    if (h.model) {
      r.parameters += ", Hires checkpoint: " + quoted(h.model->model_name());
      j["model"] = h.model->model_name();
    }
    if (h.sampler && *h.sampler != run.sampling.sampler) {
      r.parameters += fmt::format(", Hires sampler: {}", flow_sampler_display_name(*h.sampler));
      j["sampler"] = flow_sampler_name(*h.sampler);
    }
    if (h.schedule && *h.schedule != run.sampling.schedule) {
      r.parameters += fmt::format(", Hires schedule type: {}", sigma_schedule_label(*h.schedule));
      j["scheduler"] = sigma_schedule_name(*h.schedule);
    }
    if (h.prompt && *h.prompt != run.prompt) {
      r.parameters += ", Hires prompt: " + quoted(*h.prompt);
      j["prompt"] = *h.prompt;
    }
    if (h.negative_prompt && *h.negative_prompt != run.negative_prompt) {
      r.parameters += ", Hires negative prompt: " + quoted(*h.negative_prompt);
      j["negative_prompt"] = *h.negative_prompt;
    }
    if (h.cfg_scale) {
      r.parameters += fmt::format(", Hires CFG Scale: {}", *h.cfg_scale);
      j["cfg_scale"] = *h.cfg_scale;
    }
    if (h.guidance) {
      r.parameters += fmt::format(", Hires Distilled CFG Scale: {}", *h.guidance);
      j["guidance"] = *h.guidance;
    }
    return r;
  }

 private:
  struct Plan {
    GenerationSettings total;  // the final size; steps_run counts both passes
    int first_steps = 0, second_steps = 0;
    int first_width = 0;   // the first pass's
    bool batched = false;  // the second passes run in one batched run
  };

  // The model that repaints: the hires fix's own, else this one.
  const ImageGenerator& second_model(const GenerationRequest& r) const {
    return r.hires->model ? *r.hires->model : *inner_;
  }

  // Whether the first pass's latents mean the same to the second pass's model.
  bool latents_fit(const GenerationRequest& r) const {
    const auto from = inner_->latent_space();
    const auto to = second_model(r).latent_space();
    return from && to && *from == *to;
  }

  // The request as it runs here: a latent upscaler that was only a default gives way to the pixel
  // upscaler where the latents cannot be handed over.
  GenerationRequest as_run(const GenerationRequest& r) const {
    GenerationRequest run = r;
    if (run.hires->latent_by_default && !latents_fit(run)) run.hires->latent_upscaler.reset();
    return run;
  }

  static GenerationRequest first_pass(const GenerationRequest& r) {
    GenerationRequest first = r;
    first.hires.reset();
    return first;
  }

  // Image k's second pass at width x height, with seed + k: img2img from the upscaled picture or
  // latents the caller sets. Control images stay on the same model: they steer both passes
  // (A1111's ControlNet extension does the same), each pass fitting them to its own size.
  GenerationRequest second_pass(const GenerationRequest& r, int width, int height, int k) const {
    const HiresFix& h = *r.hires;
    // Batch 1, seed + k (or variation seed + k), image k's own prompts.
    GenerationRequest second = first_pass(image_request(r, k));
    if (h.model) {
      // Another model: what was set for the first gives way to the second's defaults.
      second.steps.reset();
      second.cfg_scale.reset();
      second.guidance.reset();
      second.shift.reset();
      second.cfg_normalization = GenerationRequest{}.cfg_normalization;
      second.cfg_truncation = GenerationRequest{}.cfg_truncation;
      second.max_sequence_length.reset();
      second.first_block_cache.reset();
      second.controls.clear();
      second.reference_images.clear();
      second.redux_strength.reset();
    }
    if (h.prompt) second.prompt = *h.prompt;
    if (h.negative_prompt) second.negative_prompt = *h.negative_prompt;
    if (h.sampler) second.sampling.sampler = *h.sampler;
    if (h.schedule) second.sampling.schedule = *h.schedule;
    if (h.cfg_scale) second.cfg_scale = h.cfg_scale;
    if (h.guidance) second.guidance = h.guidance;
    second.width = width;
    second.height = height;
    if (h.steps) second.steps = h.steps;
    second.strength = h.strength;
    // The request's negative prompt goes to another model where that model takes it: FLUX.1
    // refuses one it would not use (it uses one only under true CFG), so a Z-Image draft's goes
    // to FLUX.1-dev only with a hires CFG scale, and to Z-Image or FLUX.2 base as A1111 sends it.
    if (h.model && !h.negative_prompt && !accepts(*h.model, second)) {
      GenerationRequest without = second;
      without.negative_prompt.clear();
      if (accepts(*h.model, without)) second = std::move(without);
    }
    return second;
  }

  // Whether `model` takes a second pass (checked as an img2img from a picture: one from latents
  // runs the same).
  static bool accepts(const ImageGenerator& model, GenerationRequest pass) {
    pass.init_image = blank_picture(*pass.width, *pass.height);
    try {
      model.resolve(pass);
      return true;
    } catch (const Error&) {
      return false;
    }
  }

  // The second passes: in one batched run where they can share forwards (A1111 repaints a batch
  // together; each image still gets what it would alone), else one after another.
  static std::vector<io::Image> repaint(const ImageGenerator& repainter,
                                        const std::vector<GenerationRequest>& seconds,
                                        const Plan& p, const RunControl& control) {
    std::vector<io::Image> out;
    if (p.batched) {
      for (auto& images :
           repainter.generate_together(seconds, counted(control, p.first_steps, p.total.steps_run)))
        out.push_back(std::move(images.front()));
      return out;
    }
    for (size_t k = 0; k < seconds.size(); ++k)
      out.push_back(
          repainter
              .generate(seconds[k],
                        counted(control, p.first_steps + static_cast<int>(k) * p.second_steps,
                                p.total.steps_run))
              .front());
    return out;
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
    if (r.hires->latent_upscaler) check_latents_fit(r);
    const GenerationSettings first = inner_->resolve(first_pass(r));
    const auto [width, height] = hires_size(*r.hires, first.width, first.height);
    // The second pass checked as an img2img from a picture: one from latents runs the same.
    GenerationRequest second_request = second_pass(r, width, height, 0);
    second_request.init_image = blank_picture(width, height);
    GenerationSettings second;
    try {
      second = second_model(r).resolve(second_request);
    } catch (const Error& e) {
      if (!r.hires->model) throw;
      fail("[hires] the second pass on {}: {}", r.hires->model->model_name(), e.what());
    }
    GenerationRequest next_request = second_pass(r, width, height, 1);
    next_request.init_image = second_request.init_image;
    const bool batched =
        r.batch > 1 && second_model(r).can_share_forwards(second_request, next_request);
    Plan p{first, first.steps_run, second.steps_run, first.width, batched};
    p.total.mode += " + hires fix";
    p.total.width = width;
    p.total.height = height;
    p.total.steps_run = first.steps_run + (batched ? 1 : r.batch) * second.steps_run;
    return p;
  }

  // A latent upscaler needs latents the second pass's model reads as the first's model meant them.
  void check_latents_fit(const GenerationRequest& r) const {
    const std::string upscaler = upscaler_name(*r.hires);
    const auto from = inner_->latent_space();
    ZF_CHECK(from,
             "[hires] {} resizes latents, which {} cannot hand over (Z-Image and FLUX.1 can); "
             "name a pixel upscaler (Lanczos, Nearest or an upscaler model)",
             upscaler, inner_->architecture());
    const ImageGenerator& repainter = second_model(r);
    const auto to = repainter.latent_space();
    ZF_CHECK(to,
             "[hires] {} hands latents to the second pass, which {} cannot start from (Z-Image "
             "and FLUX.1 can); name a pixel upscaler (Lanczos, Nearest or an upscaler model)",
             upscaler, repainter.architecture());
    ZF_CHECK(*from == *to,
             "[hires] {} hands {}'s latents ({}) to {}, whose latents differ ({}); name a pixel "
             "upscaler (Lanczos, Nearest or an upscaler model)",
             upscaler, inner_->architecture(), describe(*from), repainter.architecture(),
             describe(*to));
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
