#include "pipeline/flux_generator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "pipeline/flux_pipeline.h"
#include "pipeline/pipeline_generator.h"

namespace zflow::pipeline {

namespace {

class FluxGenerator final : public PipelineGenerator<FluxPipeline, FluxRequest> {
 public:
  using PipelineGenerator::PipelineGenerator;

  std::string architecture() const override { return flux_variant_name(pipe_.variant()); }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    const FluxSettings s = pipe_.resolve(to_request(request));
    GenerationSettings g;
    g.mode = flux_mode_name(s.mode);
    g.width = s.width;
    g.height = s.height;
    g.steps = s.steps;
    g.steps_run = denoising_steps(s.steps, s.strength, starts_from_image(s.mode));
    if (has_guidance()) g.guidance = s.guidance;
    g.cfg_scale = s.true_cfg_scale;
    g.shift = s.shift.value_or(0.0);  // 0: the scheduler config's schedule
    g.strength = s.strength;
    return g;
  }

  // A1111's layout as Forge writes FLUX runs: the embedded guidance as "Distilled CFG Scale", the
  // true CFG scale as "CFG scale" (1: none) after the negative prompt's line.
  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    const FluxSettings s = pipe_.resolve(to_request(request));
    const bool edits = starts_from_image(s.mode);
    std::string text = request.prompt + "\n";
    if (s.true_cfg && !request.negative_prompt.empty())
      text += "Negative prompt: " + request.negative_prompt + "\n";
    text += fmt::format("Steps: {}, {}, CFG scale: {}", s.steps,
                        a1111_sampling_fields({request.sampling.sampler, s.schedule}),
                        s.true_cfg_scale);
    if (has_guidance()) text += fmt::format(", Distilled CFG Scale: {}", s.guidance);
    if (s.shift) text += fmt::format(", Shift: {}", *s.shift);
    text += fmt::format(", Seed: {}, Size: {}x{}, Model: {}", request.seed, s.width, s.height,
                        model_name());
    text += variation_infotext(request.variation);
    if (edits) text += fmt::format(", Denoising strength: {}", s.strength);
    if (request.first_block_cache)
      text += fmt::format(", First block cache: {}", *request.first_block_cache);
    if (request.batch > 1)
      text += fmt::format(", Batch size: {}, Batch pos: {}", request.batch, batch_index);
    // As A1111's ControlNet extension lists its units.
    for (size_t i = 0; i < s.controls.size(); ++i)
      text += fmt::format(
          ", ControlNet {}: \"Model: {}, Weight: {}, Guidance Start: {}, Guidance End: {}\"", i,
          pipe_.controlnet_names()[s.controls[i].net], s.controls[i].scale, s.controls[i].start,
          s.controls[i].end);

    nlohmann::json j = {
        {"model", model_name()},
        {"architecture", architecture()},
        {"mode", flux_mode_name(s.mode)},
        {"prompt", request.prompt},
        {"width", s.width},
        {"height", s.height},
        {"steps", s.steps},
        {"sampler", flow_sampler_name(request.sampling.sampler)},
        {"scheduler", sigma_schedule_name(s.schedule)},
        {"seed", request.seed},
        {"rng",
         request.normal_math == NormalMath::Avx2Cephes ? "torch-cpu-avx2" : "torch-cpu-libm"},
        {"batch", request.batch},
        {"batch_index", batch_index},
        {"max_sequence_length", s.max_sequence_length},
    };
    if (has_guidance()) j["guidance"] = s.guidance;
    if (varies(request.variation)) j["variation"] = variation_json(request.variation);
    if (s.shift) j["shift"] = *s.shift;
    if (request.first_block_cache) j["first_block_cache"] = *request.first_block_cache;
    if (s.true_cfg) {
      j["negative_prompt"] = request.negative_prompt;
      j["cfg_scale"] = s.true_cfg_scale;
    }
    if (edits) {
      j["strength"] = s.strength;
      j["init_image"] = sources.init_image;
    }
    if (s.mode == FluxMode::Inpaint) j["mask"] = sources.mask;
    const std::vector<std::string> control_names = sources.control_names(request.controls.size());
    if (s.controlnet) {
      j["controlnet"] = fmt::format("{}", fmt::join(pipe_.controlnet_names(), ", "));
      j["controls"] = nlohmann::json::array();
      for (size_t i = 0; i < s.controls.size(); ++i) {
        const FluxSettings::Control& c = s.controls[i];
        nlohmann::json one = {
            {"image", control_names[i]}, {"scale", c.scale}, {"start", c.start}, {"end", c.end}};
        if (c.mode) one["mode"] = *c.mode;
        j["controls"].push_back(one);
      }
    } else if (!request.controls.empty()) {
      j["control_image"] = control_names.front();  // Canny / Depth's map
    }
    if (s.mode == FluxMode::Edit || s.redux ||
        (s.kontext_inpaint && !request.reference_images.empty()))
      j["reference_images"] = sources.reference_names(request.reference_images.size());
    if (s.redux) {
      j["redux"] = true;
      j["redux_strength"] = s.redux_strength;
    }
    return {text, j};
  }

 private:
  // schnell has no guidance input; a ControlNet beside it may.
  bool has_guidance() const {
    const auto& nets = pipe_.controlnets();
    return pipe_.variant() != FluxVariant::Schnell ||
           std::any_of(nets.begin(), nets.end(),
                       [](const auto& net) { return net->config().trunk.guidance_embeds; });
  }

  // FLUX.1's classifier-free guidance is diffusers' optional "true CFG" (its guidance proper is
  // embedded): cfg_scale above 1 runs it against the negative prompt, the empty prompt when none
  // is given, as stable-diffusion.cpp, ComfyUI and Forge do (diffusers needs negative_prompt=""
  // for that). cfg_scale 0 or 1 means none; a negative prompt that would be ignored is an error.
  FluxRequest to_request(const GenerationRequest& r) const override {
    const float cfg = r.cfg_scale.value_or(1.0f);
    const bool true_cfg = cfg > 1.0f;
    if (!true_cfg && cfg != 0.0f && cfg != 1.0f)
      fail(
          "[flux] cfg_scale {}: FLUX.1's true CFG takes a scale above 1 with a negative_prompt; 0 "
          "or 1 mean none (set guidance for its embedded guidance)",
          cfg);
    if (!true_cfg && !r.negative_prompt.empty())
      fail(
          "[flux] negative_prompt is used only by true CFG: set cfg_scale above 1 too (FLUX.1 "
          "runs without classifier-free guidance otherwise)");
    if (r.cfg_normalization != 0.0f || r.cfg_truncation != 1.0)
      fail("[flux] cfg normalization / truncation are Z-Image settings");
    if (r.guidance && !has_guidance())
      fail("[flux] guidance: {} has no guidance input", architecture());
    FluxRequest f;
    f.prompt = r.prompt;
    f.width = r.width;
    f.height = r.height;
    f.steps = r.steps;
    f.guidance = r.guidance;
    if (true_cfg) {
      f.true_cfg_scale = cfg;
      f.negative_prompt = r.negative_prompt;
    }
    f.seed = r.seed;
    f.variation = r.variation;
    f.batch = r.batch;
    f.init_image = r.init_image;
    f.mask = r.mask;
    f.init_latents = r.init_latents;
    f.masked_content = r.masked_content;
    f.references = r.reference_images;
    f.redux_strength = r.redux_strength;
    f.controls = r.controls;
    f.strength = r.strength;
    if (r.max_sequence_length) f.max_sequence_length = static_cast<int>(*r.max_sequence_length);
    f.shift = r.shift;
    f.sampling = r.sampling;
    f.first_block_cache = r.first_block_cache;
    f.normal_math = r.normal_math;
    f.vae_tiling = r.vae_tiling;
    return f;
  }
};

}  // namespace

std::unique_ptr<ImageGenerator> load_flux_generator(const ModelFiles& files) {
  return std::make_unique<FluxGenerator>(
      FluxPipeline::load({.model_dir = files.model_dir,
                          .diffusion_model = files.diffusion_model,
                          .clip = files.clip_l,
                          .t5 = files.t5xxl,
                          .vae = files.vae,
                          .clip_tokenizer = files.clip_tokenizer,
                          .t5_tokenizer = files.t5_tokenizer,
                          .redux = files.redux,
                          .siglip = files.siglip,
                          .controlnets = files.controlnets,
                          .quantize = files.quantize,
                          .loras = files.loras},
                         placement_for(files)));
}

}  // namespace zflow::pipeline
