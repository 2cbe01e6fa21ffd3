#include "pipeline/flux2_generator.h"

#include <fmt/format.h>

#include "core/error.h"
#include "pipeline/flux2_pipeline.h"
#include "pipeline/pipeline_generator.h"

namespace zflow::pipeline {

namespace {

class Flux2Generator final : public PipelineGenerator<Flux2Pipeline, Flux2Request> {
 public:
  using PipelineGenerator::PipelineGenerator;

  std::string architecture() const override { return flux2_variant_name(pipe_.variant()); }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    const Flux2Settings s = pipe_.resolve(to_request(request));
    GenerationSettings g;
    g.mode = mode_name(request, s);
    g.width = s.width;
    g.height = s.height;
    g.steps = s.steps;
    g.steps_run = denoising_steps(s.steps, s.strength, s.mode != Flux2Mode::TextToImage);
    g.strength = s.strength;
    g.cfg_scale = s.cfg_scale;
    if (has_guidance()) g.guidance = s.guidance;
    return g;
  }

  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    const Flux2Settings s = pipe_.resolve(to_request(request));
    std::string text = request.prompt + "\n";
    if (s.cfg && !request.negative_prompt.empty())
      text += "Negative prompt: " + request.negative_prompt + "\n";
    text += fmt::format("Steps: {}, {}, CFG scale: {}, Seed: {}, Size: {}x{}, Model: {}", s.steps,
                        a1111_sampling_fields({request.sampling.sampler, s.schedule}), s.cfg_scale,
                        request.seed, s.width, s.height, model_name());
    text += variation_infotext(request.variation);
    // The embedded guidance as Forge writes FLUX's.
    if (has_guidance()) text += fmt::format(", Distilled CFG Scale: {}", s.guidance);
    const bool edits = s.mode != Flux2Mode::TextToImage;
    if (edits) text += fmt::format(", Denoising strength: {}", s.strength);
    if (request.batch > 1)
      text += fmt::format(", Batch size: {}, Batch pos: {}", request.batch, batch_index);
    nlohmann::json j = {
        {"model", model_name()},
        {"architecture", architecture()},
        {"mode", mode_name(request, s)},
        {"prompt", request.prompt},
        {"width", s.width},
        {"height", s.height},
        {"steps", s.steps},
        {"sampler", flow_sampler_name(request.sampling.sampler)},
        {"scheduler", sigma_schedule_name(s.schedule)},
        {"cfg_scale", s.cfg_scale},
        {"seed", request.seed},
        {"rng",
         request.normal_math == NormalMath::Avx2Cephes ? "torch-cpu-avx2" : "torch-cpu-libm"},
        {"batch", request.batch},
        {"batch_index", batch_index},
        {"max_sequence_length", s.max_sequence_length},
    };
    if (s.cfg) j["negative_prompt"] = request.negative_prompt;
    if (has_guidance()) j["guidance"] = s.guidance;
    if (varies(request.variation)) j["variation"] = variation_json(request.variation);
    if (edits) {
      j["strength"] = s.strength;
      j["init_image"] = sources.init_image;
    }
    if (s.mode == Flux2Mode::Inpaint) j["mask"] = sources.mask;
    if (!request.reference_images.empty())
      j["reference_images"] = sources.reference_names(request.reference_images.size());
    return {text, j};
  }

 private:
  bool has_guidance() const { return pipe_.variant() == Flux2Variant::Dev; }

  // Text-to-image with reference images is "edit".
  static std::string mode_name(const GenerationRequest& request, const Flux2Settings& s) {
    if (s.mode == Flux2Mode::TextToImage && !request.reference_images.empty()) return "edit";
    return flux2_mode_name(s.mode);
  }

  // FLUX.2 klein takes CFG (the base models) against the negative prompt, the empty one by
  // default as diffusers' Flux2KleinPipeline; dev takes its embedded guidance. Neither has a
  // shift or Z-Image's CFG options.
  Flux2Request to_request(const GenerationRequest& r) const override {
    if (r.cfg_normalization != 0.0f || r.cfg_truncation != 1.0)
      fail("[flux2] cfg normalization / truncation are Z-Image settings");
    if (!r.controls.empty())
      fail("[flux2] control image: zflow runs ControlNets with Z-Image and FLUX.1");
    if (r.shift)
      fail("[flux2] shift: FLUX.2's schedule shifts by its token and step counts (no fixed shift)");
    if (r.redux_strength) fail("[flux2] Redux strength: Redux is FLUX.1's");
    if (r.first_block_cache)
      fail("[flux2] first-block cache: zflow runs it with Z-Image and FLUX.1");
    Flux2Request f;
    f.prompt = r.prompt;
    if (!r.negative_prompt.empty()) f.negative_prompt = r.negative_prompt;
    f.width = r.width;
    f.height = r.height;
    f.steps = r.steps;
    f.cfg_scale = r.cfg_scale;
    f.guidance = r.guidance;
    f.seed = r.seed;
    f.variation = r.variation;
    f.batch = r.batch;
    ZF_CHECK(!r.init_latents,
             "[flux2] init latents: FLUX.2 starts img2img from an init image (latent upscalers "
             "work with Z-Image and FLUX.1)");
    f.init_image = r.init_image;
    f.strength = r.strength;
    f.mask = r.mask;
    f.masked_content = r.masked_content;
    f.sampling = r.sampling;
    if (r.max_sequence_length) f.max_sequence_length = static_cast<int>(*r.max_sequence_length);
    f.normal_math = r.normal_math;
    f.vae_tiling = r.vae_tiling;
    f.references = r.reference_images;
    return f;
  }
};

}  // namespace

std::unique_ptr<ImageGenerator> load_flux2_generator(const ModelFiles& files) {
  return std::make_unique<Flux2Generator>(
      Flux2Pipeline::load({.model_dir = files.model_dir,
                           .diffusion_model = files.diffusion_model,
                           .text_encoder = files.text_encoder,
                           .tokenizer = files.tokenizer,
                           .vae = files.vae,
                           .quantize = files.quantize,
                           .loras = files.loras},
                          placement_for(files)));
}

}  // namespace zflow::pipeline
