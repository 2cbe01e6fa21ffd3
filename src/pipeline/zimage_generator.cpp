#include "pipeline/zimage_generator.h"

#include "core/error.h"
#include "pipeline/pipeline_generator.h"
#include "pipeline/zimage_metadata.h"
#include "pipeline/zimage_pipeline.h"

namespace zflow::pipeline {

namespace {

class ZImageGenerator final : public PipelineGenerator<ZImagePipeline, ZImageRequest> {
 public:
  using PipelineGenerator::PipelineGenerator;

  std::string architecture() const override {
    return pipe_.omni() ? "Z-Image Omni" : zimage_variant_name(pipe_.variant());
  }

  GenerationSettings resolve(const GenerationRequest& request) const override {
    const ZImageSettings s = pipe_.resolve(to_request(request));
    GenerationSettings g;
    g.mode = zimage_mode_name(s.mode);
    g.width = s.width;
    g.height = s.height;
    g.steps = s.steps;
    g.steps_run = denoising_steps(s.steps, s.strength, starts_from_image(s.mode));
    g.cfg_scale = s.guidance;
    g.shift = s.shift;
    g.strength = s.strength;
    return g;
  }

  ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                     int batch_index) const override {
    const ZImageRequest z = to_request(request);
    const ZImageSettings s = pipe_.resolve(z);
    return {a1111_parameters(z, s, model_name(), pipe_.controlnet_name(), batch_index),
            request_json(z, s, model_name(), pipe_.controlnet_name(),
                         {sources.init_image, sources.mask,
                          request.controls.empty() ? "" : sources.control_names(1).front(),
                          sources.reference_names(request.reference_images.size())},
                         batch_index)};
  }

 private:
  // Z-Image's guidance is classifier-free only: the model embeds none, so a request for embedded
  // guidance is a mistake worth naming rather than ignoring.
  ZImageRequest to_request(const GenerationRequest& r) const override {
    if (r.redux_strength) fail("[zimage] Redux strength: Redux is FLUX.1's");
    if (r.guidance)
      fail(
          "[zimage] guidance: Z-Image has no embedded (distilled) guidance; use cfg_scale for "
          "classifier-free guidance");
    ZImageRequest z;
    z.prompt = r.prompt;
    z.negative_prompt = r.negative_prompt;
    z.width = r.width;
    z.height = r.height;
    z.steps = r.steps;
    z.guidance = r.cfg_scale;
    z.cfg_normalization = r.cfg_normalization;
    z.cfg_truncation = r.cfg_truncation;
    z.shift = r.shift;
    z.sampling = r.sampling;
    z.first_block_cache = r.first_block_cache;
    z.seed = r.seed;
    z.variation = r.variation;
    z.batch = r.batch;
    z.init_image = r.init_image;
    z.mask = r.mask;
    z.init_latents = r.init_latents;
    z.masked_content = r.masked_content;
    z.strength = r.strength;
    if (r.max_sequence_length) z.max_sequence_length = *r.max_sequence_length;
    z.normal_math = r.normal_math;
    z.vae_tiling = r.vae_tiling;
    z.references = r.reference_images;
    if (r.controls.size() > 1)
      fail("[zimage] {} control images: a Z-Image ControlNet reads one (FLUX.1's read several)",
           r.controls.size());
    if (!r.controls.empty()) {
      const ControlInput& c = r.controls.front();
      z.control_image = c.image;
      if (c.scale) z.control_scale = *c.scale;
      // A1111 clients send the whole window by default: only a narrower one is refused.
      if (c.start.value_or(0.0) != 0.0 || c.end.value_or(1.0) != 1.0 || c.mode)
        fail(
            "[zimage] control start, end and mode are FLUX.1 ControlNet settings (Z-Image's "
            "ControlNet acts on every step, its Union modes need none)");
    }
    return z;
  }
};

// Z-Image runs one ControlNet.
std::filesystem::path one_controlnet(const std::vector<std::filesystem::path>& controlnets) {
  ZF_CHECK(controlnets.size() <= 1,
           "[zimage] {} ControlNets: Z-Image runs one (FLUX.1 runs several side by side)",
           controlnets.size());
  return controlnets.empty() ? std::filesystem::path() : controlnets.front();
}

}  // namespace

std::unique_ptr<ImageGenerator> load_zimage_generator(const ModelFiles& files) {
  return std::make_unique<ZImageGenerator>(
      ZImagePipeline::load({.model_dir = files.model_dir,
                            .diffusion_model = files.diffusion_model,
                            .text_encoder = files.text_encoder,
                            .vae = files.vae,
                            .tokenizer = files.tokenizer,
                            .quantize = files.quantize,
                            .loras = files.loras,
                            .controlnet = one_controlnet(files.controlnets),
                            .siglip = files.siglip},
                           placement_for(files)));
}

}  // namespace zflow::pipeline
