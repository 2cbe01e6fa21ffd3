#include "pipeline/zimage_pipeline.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "models/vae_tiling.h"
#include "pipeline/image_tensor.h"
#include "pipeline/pipeline_files.h"
#include "pipeline/preview.h"
#include "pipeline/shared_forwards.h"
#include "pipeline/start_latents.h"
#include "pipeline/zimage_control.h"
#include "pipeline/zimage_omni.h"
#include "pipeline/zimage_sampler.h"
#include "sampling/flow_schedule.h"
#include "text/chat_template.h"

namespace zflow::pipeline {

namespace fs = std::filesystem;

ZImageDefaults zimage_defaults(ZImageVariant variant) {
  return variant == ZImageVariant::Turbo ? ZImageDefaults{8, 0.0f, 3.0}
                                         : ZImageDefaults{50, 4.0f, 6.0};
}

const char* zimage_variant_name(ZImageVariant variant) {
  return variant == ZImageVariant::Turbo ? "Z-Image-Turbo" : "Z-Image";
}

const char* zimage_mode_name(ZImageMode mode) {
  switch (mode) {
    case ZImageMode::TextToImage:
      return "txt2img";
    case ZImageMode::ImageToImage:
      return "img2img";
    case ZImageMode::Inpaint:
      return "inpaint";
    case ZImageMode::ControlInpaint:
      return "controlnet-inpaint";
    case ZImageMode::Omni:
      return "omni";
  }
  return "?";
}

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

ZImagePipeline::ZImagePipeline(text::BpeTokenizer tokenizer, models::Qwen3TextEncoder text_encoder,
                               models::ZImageTransformer transformer, models::AutoencoderKL vae)
    : tokenizer_(std::move(tokenizer)),
      text_encoder_(std::move(text_encoder)),
      transformer_(std::move(transformer)),
      vae_(std::move(vae)) {}

ZImagePipeline ZImagePipeline::load(const ZImageFiles& files, const models::Placement& placement) {
  std::optional<SchedulerConfig> scheduler;
  if (!files.model_dir.empty()) {
    const fs::path index = files.model_dir / "model_index.json";
    if (!fs::is_regular_file(index))
      fail("[zimage] {}: no model_index.json (expected a diffusers Z-Image folder)",
           files.model_dir.string());
    const std::string cls = read_json_file(index, "zimage").value("_class_name", "");
    if (!cls.starts_with("ZImage"))
      fail("[zimage] {}: _class_name is '{}', expected a Z-Image pipeline (ZImagePipeline)",
           index.string(), cls);
    const fs::path scheduler_config = files.model_dir / "scheduler" / "scheduler_config.json";
    if (fs::is_regular_file(scheduler_config))
      scheduler = read_scheduler_config(scheduler_config, "zimage");
  }
  const fs::path dit_path = component_path("zimage", "Z-Image", files.model_dir,
                                           files.diffusion_model, "transformer", "diffusion model");
  const fs::path te_path = component_path("zimage", "Z-Image", files.model_dir, files.text_encoder,
                                          "text_encoder", "text encoder");
  const fs::path vae_path =
      component_path("zimage", "Z-Image", files.model_dir, files.vae, "vae", "VAE");
  // A Qwen3 GGUF carries its tokenizer: it serves when none is given and the folder has none.
  std::optional<text::BpeTokenizer> gguf_tokenizer =
      gguf_text_encoder_tokenizer(files.tokenizer, files.model_dir, te_path);
  fs::path tok_path = te_path;
  if (!gguf_tokenizer)
    tok_path = component_path("zimage", "Z-Image", files.model_dir, files.tokenizer, "tokenizer",
                              "tokenizer");
  auto tokenizer = gguf_tokenizer ? std::move(*gguf_tokenizer)
                                  : load_component("zimage", "tokenizer", tok_path, [&] {
                                      return text::load_bpe_tokenizer(tok_path);
                                    });
  auto text_encoder = load_component("zimage", "text encoder", te_path, [&] {
    return models::load_qwen3_text_encoder(te_path, std::nullopt, placement);
  });
  auto transformer = load_component("zimage", "diffusion model", dit_path, [&] {
    return models::load_zimage_transformer(dit_path, std::nullopt, placement, files.quantize,
                                           files.loras);
  });
  auto vae = load_component("zimage", "VAE", vae_path, [&] {
    return models::load_autoencoder_kl(vae_path, std::nullopt, placement);
  });

  const auto& dit = transformer.config();
  if (text_encoder.config().hidden_size != dit.cap_feat_dim)
    fail(
        "[zimage] text encoder {} gives {}-wide features, but the diffusion model {} expects "
        "captions of {} (cap_feat_dim): they are not from the same Z-Image release",
        te_path.string(), text_encoder.config().hidden_size, dit_path.string(), dit.cap_feat_dim);
  if (vae.config().latent_channels != dit.in_channels)
    fail("[zimage] VAE {} has {} latent channels, but the diffusion model {} expects {}",
         vae_path.string(), vae.config().latent_channels, dit_path.string(), dit.in_channels);
  for (const auto& t : tokenizer.added_tokens())
    if (t.id >= text_encoder.config().vocab_size)
      fail("[zimage] tokenizer {} has id {} ('{}') past the text encoder's {} embeddings",
           tok_path.string(), t.id, t.content, text_encoder.config().vocab_size);

  // Turbo or Base: the release names say it ("Z-Image-Turbo", "z_image_turbo_bf16.safetensors"
  // versus "Z-Image", "z_image_bf16.safetensors"), so a name containing "turbo" means Turbo.
  // Otherwise the scheduler config decides: Turbo ships shift 3, Base shift 6. A single file with
  // neither is taken as Base, whose defaults (50 steps, CFG) also work, only slower, for Turbo.
  const std::string names =
      lower(files.model_dir.filename().string() + " " + files.diffusion_model.filename().string());
  ZImageVariant variant = ZImageVariant::Base;
  if (names.find("turbo") != std::string::npos)
    variant = ZImageVariant::Turbo;
  else if (scheduler)
    variant = scheduler->shift <= 4.5 ? ZImageVariant::Turbo : ZImageVariant::Base;
  const fs::path named = files.model_dir.empty() ? files.diffusion_model : files.model_dir;
  ZImagePipeline pipe = assemble(
      std::move(tokenizer), std::move(text_encoder), std::move(transformer), std::move(vae),
      variant, (named.filename().empty() ? named.parent_path() : named).stem().string());
  if (scheduler) {
    pipe.scheduler_ = *scheduler;
    pipe.defaults_.shift = scheduler->shift;
  }
  if (!files.controlnet.empty()) {
    pipe.controlnet_ = load_component("zimage", "ControlNet", files.controlnet, [&] {
      return models::load_zimage_controlnet(files.controlnet, pipe.transformer_.config(),
                                            placement);
    });
    const fs::path& c = files.controlnet;
    pipe.controlnet_name_ = (c.filename().empty() ? c.parent_path() : c).stem().string();
  }
  if (pipe.omni()) {
    ZF_CHECK(files.controlnet.empty(), "[zimage] {}: an Omni model takes no ControlNet",
             pipe.model_name_);
    const fs::path siglip = component_path("zimage", "Z-Image Omni", files.model_dir, files.siglip,
                                           "siglip", "SigLIP 2 tower (--siglip)");
    pipe.siglip_ = load_component("zimage", "SigLIP 2 tower", siglip, [&] {
      return models::load_siglip2_vision_model(siglip, placement);
    });
    const fs::path processor = files.model_dir / "siglip_processor" / "preprocessor_config.json";
    // Without the folder's processor config: the tower's patch size and the processor's
    // default patch budget.
    pipe.siglip_processor_.patch_size = pipe.siglip_->config().patch_size;
    if (!files.model_dir.empty() && fs::is_regular_file(processor))
      pipe.siglip_processor_ = models::Siglip2ProcessorConfig::from_json_file(processor);
    ZF_CHECK(pipe.siglip_processor_.patch_size == pipe.siglip_->config().patch_size,
             "[zimage] {}: the SigLIP 2 processor cuts {}-pixel patches, but the tower {} reads "
             "{}-pixel ones",
             processor.string(), pipe.siglip_processor_.patch_size, siglip.string(),
             pipe.siglip_->config().patch_size);
    log::info("[zimage] Omni: SigLIP 2 patches of {} pixels, at most {}",
              pipe.siglip_processor_.patch_size, pipe.siglip_processor_.max_num_patches);
  } else {
    ZF_CHECK(files.siglip.empty(),
             "[zimage] --siglip {}: a SigLIP 2 tower is for Z-Image Omni models; {} is not one",
             files.siglip.string(), pipe.model_name_);
  }
  log::info("[zimage] {} as {}: {} steps, g {}, shift {}", pipe.model_name_,
            zimage_variant_name(pipe.variant_), pipe.defaults_.steps, pipe.defaults_.guidance,
            pipe.defaults_.shift);
  return pipe;
}

ZImagePipeline ZImagePipeline::assemble(text::BpeTokenizer tokenizer,
                                        models::Qwen3TextEncoder text_encoder,
                                        models::ZImageTransformer transformer,
                                        models::AutoencoderKL vae, ZImageVariant variant,
                                        std::string model_name) {
  ZImagePipeline pipe(std::move(tokenizer), std::move(text_encoder), std::move(transformer),
                      std::move(vae));
  pipe.variant_ = variant;
  pipe.defaults_ = zimage_defaults(variant);
  pipe.scheduler_.shift = pipe.defaults_.shift;  // a static shift, as the releases' configs
  pipe.model_name_ = std::move(model_name);
  return pipe;
}

int64_t ZImagePipeline::vae_scale_factor() const {
  return int64_t{1} << (vae_.config().levels() - 1);
}

ZImageSettings ZImagePipeline::resolve(const ZImageRequest& request) const {
  ZImageSettings s{};
  const io::Image* init = request.init_image ? &*request.init_image : nullptr;
  const io::Image* mask = request.mask ? &*request.mask : nullptr;
  const io::Image* control = request.control_image ? &*request.control_image : nullptr;
  ZF_CHECK(!control || controlnet_,
           "[zimage] a control image needs a ControlNet (--control-net FILE)");
  ZF_CHECK(request.control_scale >= 0.0f, "[zimage] control scale must be >= 0, got {}",
           request.control_scale);
  ZF_CHECK(omni() || request.references.empty(),
           "[zimage] reference images: {} is not an Omni model (Z-Image Omni edits with them)",
           model_name_);
  if (omni()) {
    ZF_CHECK(!init && !mask && !request.init_latents,
             "[zimage] an Omni model has no img2img or inpainting: give the picture "
             "as a reference image (-r) to edit it");
    std::tie(s.width, s.height) =
        zimage_omni_size(request.references, request.width, request.height, 2 * vae_scale_factor());
    s.mode = ZImageMode::Omni;
  } else if (request.init_latents) {
    ZF_CHECK(!init && !mask && !control,
             "[zimage] init latents start an img2img of their own: no init image, mask or "
             "control image with them");
    std::tie(s.width, s.height) = init_latents_size(
        "zimage", *request.init_latents, request.width, request.height, vae_scale_factor(),
        transformer_.config().in_channels, 2 * vae_scale_factor());
    s.mode = ZImageMode::ImageToImage;
  } else {
    // The size comes from the init image, else from the control image, else the defaults.
    std::tie(s.width, s.height) = checked_image_size("zimage", request.width, request.height, init,
                                                     mask, 2 * vae_scale_factor(), control);
    s.controlled = control != nullptr;
    s.mode = mask   ? (control ? ZImageMode::ControlInpaint : ZImageMode::Inpaint)
             : init ? ZImageMode::ImageToImage
                    : ZImageMode::TextToImage;
  }
  s.steps = request.steps.value_or(defaults_.steps);
  ZF_CHECK(s.steps >= 1, "[zimage] steps must be at least 1, got {}", s.steps);
  s.guidance = request.guidance.value_or(defaults_.guidance);
  ZF_CHECK(s.guidance >= 0.0f, "[zimage] guidance (g) must be >= 0, got {}", s.guidance);
  ZF_CHECK(request.cfg_normalization >= 0.0f, "[zimage] cfg normalization must be >= 0, got {}",
           request.cfg_normalization);
  s.shift = request.shift.value_or(defaults_.shift);
  s.schedule = effective_schedule(scheduler_, request.sampling.schedule);
  ZF_CHECK(s.shift > 0.0, "[zimage] shift must be positive, got {}", s.shift);
  const bool from_image = starts_from_image(s.mode);
  s.strength =
      !from_image ? 1.0 : request.strength.value_or(s.mode == ZImageMode::Inpaint ? 1.0 : 0.6);
  if (from_image) img2img_start(s.steps, s.strength);  // throws if bad
  ZF_CHECK(request.batch >= 1, "[zimage] batch must be at least 1, got {}", request.batch);
  ZF_CHECK(request.max_sequence_length >= 1, "[zimage] max_sequence_length must be >= 1");
  if (const auto& threshold = request.first_block_cache) {
    ZF_CHECK(*threshold > 0.0f && std::isfinite(*threshold),
             "[zimage] first-block cache threshold must be positive, got {}", *threshold);
    ZF_CHECK(!s.controlled && !omni(),
             "[zimage] first-block cache: not with {} (zflow caches plain runs)",
             omni() ? "an Omni model" : "a ControlNet");
    ZF_CHECK(transformer_.config().n_layers >= 2,
             "[zimage] first-block cache: {}'s transformer has one main layer", model_name_);
  }
  return s;
}

bool ZImagePipeline::can_share_forwards(const ZImageRequest& a, const ZImageRequest& b) const {
  const auto settings = resolved_shareable(*this, a, b);
  if (!settings || a.control_image || b.control_image || !a.references.empty() ||
      !b.references.empty())
    return false;
  const auto& [sa, sb] = *settings;
  return sa.width == sb.width && sa.height == sb.height && sa.steps == sb.steps &&
         sa.guidance == sb.guidance && sa.shift == sb.shift &&
         a.cfg_normalization == b.cfg_normalization && a.cfg_truncation == b.cfg_truncation &&
         a.max_sequence_length == b.max_sequence_length && a.normal_math == b.normal_math &&
         a.vae_tiling == b.vae_tiling && a.sampling == b.sampling &&
         !is_stochastic(a.sampling.sampler) &&  // its noise is the request's own
         // the cache decides on the whole batch, which would tie the requests together
         !a.first_block_cache && !b.first_block_cache;
}

std::vector<io::Image> ZImagePipeline::generate(const ZImageRequest& request,
                                                const RunControl& control) const {
  return std::move(generate_together({&request, 1}, control).front());
}

std::vector<std::vector<io::Image>> ZImagePipeline::generate_together(
    std::span<const ZImageRequest> requests, const RunControl& control) const {
  const Tensor latents = denoise_together(requests, control);
  Stopwatch clock;
  const Tensor image = models::decode_latents(vae_, latents, requests.front().vae_tiling);
  log::info("[zimage] decoded in {:.2f} s", clock.lap());
  return split_by_request(tensor_to_images(image), requests);
}

std::vector<Tensor> ZImagePipeline::generate_latents_together(
    std::span<const ZImageRequest> requests, const RunControl& control) const {
  return split_batch(denoise_together(requests, control));
}

Tensor ZImagePipeline::denoise_together(std::span<const ZImageRequest> requests,
                                        const RunControl& control) const {
  require_shareable("zimage", *this, requests);
  const ZImageRequest& first = requests.front();
  const ZImageSettings s = resolve(first);
  const bool cfg = s.guidance > 0.0f;
  Stopwatch clock;

  // Prompts: every distinct text (prompts and, under CFG, negative prompts) in one text-encoder
  // batch; sample k of request r is conditioned on r's.
  std::vector<std::string> texts;
  auto text_index = [&](const std::string& text) {
    const auto it = std::find(texts.begin(), texts.end(), text);
    if (it != texts.end()) return static_cast<size_t>(it - texts.begin());
    texts.push_back(text);
    return texts.size() - 1;
  };
  std::vector<size_t> positive_text, negative_text;
  for (const ZImageRequest& r : requests) {
    positive_text.push_back(text_index(r.prompt));
    if (cfg) negative_text.push_back(text_index(r.negative_prompt));
  }
  // Omni: each text in segments around the condition images, every segment encoded alone.
  const size_t n_images = first.references.size();
  std::vector<std::vector<int32_t>> ids;
  std::vector<size_t> segments;  // per text
  for (const std::string& text : texts) {
    const auto tokens =
        omni()
            ? text::encode_zimage_omni_prompt(tokenizer_, text, n_images, first.max_sequence_length)
            : std::vector{text::encode_zimage_prompt(tokenizer_, text, first.max_sequence_length)};
    for (const text::PromptTokens& t : tokens)
      ids.emplace_back(t.real_ids().begin(), t.real_ids().end());
    segments.push_back(tokens.size());
  }
  const std::vector<Tensor> encoded = text_encoder_.encode_batch(ids);
  std::vector<ZImageCaption> embeddings;
  for (auto next = encoded.begin(); const size_t n : segments) {
    embeddings.emplace_back(next, next + static_cast<std::ptrdiff_t>(n));
    next += static_cast<std::ptrdiff_t>(n);
  }
  log::info("[zimage] {} prompt(s) encoded in {:.2f} s", texts.size(), clock.lap());

  // Start latents, request by request from its own seed (start_latents.h: the posterior sample
  // first, then the noise), so that each request starts where it would alone.
  const bool from_image = starts_from_image(s.mode);
  const int64_t tokens =
      (s.height / (2 * vae_scale_factor())) * (s.width / (2 * vae_scale_factor()));
  FlowSchedule schedule =
      respace(zimage_config_schedule(scheduler_, s.steps, first.shift, tokens), s.schedule);
  if (from_image) schedule = schedule.starting_at(img2img_start(s.steps, s.strength));
  const int64_t cells = 2 * vae_scale_factor();
  std::vector<ZImageCaption> positive, negative;
  std::vector<Tensor> starts;
  std::optional<FlowInpaint> inpaint;  // a lone inpaint request's
  for (size_t i = 0; i < requests.size(); ++i) {
    const ZImageRequest& r = requests[i];
    const auto copies = static_cast<size_t>(r.batch);
    positive.insert(positive.end(), copies, embeddings[positive_text[i]]);
    if (cfg) negative.insert(negative.end(), copies, embeddings[negative_text[i]]);
    const Shape shape{r.batch, transformer_.config().in_channels, 2 * (s.height / cells),
                      2 * (s.width / cells)};
    Generator generator(r.seed, r.normal_math);
    StartLatents start =
        start_latents(vae_, generator, shape, schedule.sigmas[0],
                      {.init = from_image && r.init_image ? &*r.init_image : nullptr,
                       .init_latents = r.init_latents ? &*r.init_latents : nullptr,
                       .mask = from_image && r.mask ? &*r.mask : nullptr,
                       .content = r.masked_content,
                       .vae_tiling = r.vae_tiling,
                       .variation = r.variation});
    starts.push_back(std::move(start.latents));
    inpaint = std::move(start.inpaint);
  }

  // The ControlNet's input, made once: every forward of the run gets the same.
  std::optional<models::ZImageControl> control_input;
  if (s.controlled) {
    const bool inpaint = s.mode == ZImageMode::ControlInpaint;
    control_input = models::ZImageControl{
        &*controlnet_,
        zimage_control_context(vae_, controlnet_->config().control_in_dim, *first.control_image,
                               inpaint ? &*first.init_image : nullptr,
                               inpaint ? &*first.mask : nullptr, s.width, s.height,
                               first.vae_tiling),
        first.control_scale};
    log::info("[zimage] control image encoded in {:.2f} s", clock.lap());
  }
  // Omni's condition images, made once: every forward of the run gets the same.
  std::vector<models::ZImageOmniCondition> conditions;
  if (n_images > 0) {
    conditions =
        zimage_omni_conditions(first.references, first.width, first.height, vae_,
                               siglip_ ? &*siglip_ : nullptr, siglip_processor_, first.vae_tiling);
    log::info("[zimage] {} condition image(s) encoded in {:.2f} s", n_images, clock.lap());
  }
  // One cache state for the run's every forward (CFG's halves share it: diffusers' Z-Image
  // pipeline batches them in one call).
  std::optional<models::FirstBlockCache> cache;
  if (first.first_block_cache) cache.emplace(*first.first_block_cache, 1);
  const ZImageDenoiser model = [&](const Tensor& x, std::span<const float> t,
                                   const std::vector<ZImageCaption>& captions) {
    if (omni()) return transformer_.forward_omni(x, t, captions, conditions);
    std::vector<Tensor> texts;
    for (const ZImageCaption& caption : captions) texts.push_back(caption.front());
    return transformer_.forward(x, t, texts, control_input ? &*control_input : nullptr,
                                cache ? &*cache : nullptr);
  };
  const ZImageGuidance guidance{s.guidance, first.cfg_normalization, first.cfg_truncation};
  const Tensor start = starts.size() == 1 ? starts.front() : ops::concat(starts, 0);
  const Tensor latents = zimage_denoise(
      model, start, schedule, positive, negative, guidance, inpaint ? &*inpaint : nullptr,
      with_previews(control, vae_), first.sampling.sampler,
      sampler_noise(first.seed, first.normal_math, start.shape()));
  const double denoise_seconds = clock.lap();
  log::info("[zimage] {} steps in {:.2f} s ({:.2f} s/step)", schedule.steps(), denoise_seconds,
            denoise_seconds / schedule.steps());
  if (cache)
    log::info("[zimage] first-block cache: {} of {} forwards ran one main layer",
              cache->skipped_calls(), cache->calls());
  return latents;
}

}  // namespace zflow::pipeline
