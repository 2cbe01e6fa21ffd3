#include "pipeline/flux_pipeline.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "models/vae_tiling.h"
#include "pipeline/flow_denoise.h"
#include "pipeline/flow_euler.h"
#include "pipeline/flux_control.h"
#include "pipeline/flux_controlnet_input.h"
#include "pipeline/flux_fill.h"
#include "pipeline/flux_kontext.h"
#include "pipeline/image_tensor.h"
#include "pipeline/pipeline_files.h"
#include "pipeline/preview.h"
#include "pipeline/shared_forwards.h"
#include "pipeline/start_latents.h"
#include "sampling/flow_schedule.h"

namespace zflow::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFamily = "flux";
constexpr int kMaxT5Length = 512;  // diffusers rejects longer max_sequence_length

// [n, ...] copies of one sample's tensor t[...].
Tensor repeat_sample(const Tensor& t, int64_t n) {
  Shape one = t.shape();
  one.insert(one.begin(), 1);
  return repeat_batch(t.contiguous().view(one), n);
}

}  // namespace

const char* flux_variant_name(FluxVariant variant) {
  switch (variant) {
    case FluxVariant::Dev:
      return "FLUX.1-dev";
    case FluxVariant::Schnell:
      return "FLUX.1-schnell";
    case FluxVariant::FillDev:
      return "FLUX.1-Fill-dev";
    case FluxVariant::KontextDev:
      return "FLUX.1-Kontext-dev";
    case FluxVariant::ControlDev:
      return "FLUX.1-Canny/Depth-dev";
  }
  return "?";
}

FluxDefaults flux_defaults(FluxVariant variant) {
  switch (variant) {
    case FluxVariant::Dev:
    case FluxVariant::KontextDev:  // FluxKontextPipeline's defaults are FluxPipeline's
      return {28, 3.5f, 7.0f, text::kT5DevMaxLength};
    case FluxVariant::Schnell:
      return {4, 0.0f, 0.0f, text::kT5SchnellMaxLength};
    case FluxVariant::FillDev:
      return {50, 30.0f, 30.0f, text::kT5DevMaxLength};
    case FluxVariant::ControlDev:  // FluxControlPipeline's and FluxControlImg2ImgPipeline's
      return {28, 3.5f, 7.0f, text::kT5DevMaxLength};
  }
  return {};
}

const char* flux_mode_name(FluxMode mode) {
  switch (mode) {
    case FluxMode::TextToImage:
      return "txt2img";
    case FluxMode::ImageToImage:
      return "img2img";
    case FluxMode::Inpaint:
      return "inpaint";
    case FluxMode::Edit:
      return "edit";
    case FluxMode::Control:
      return "control";
  }
  return "?";
}

FluxPipeline::FluxPipeline(text::ClipTokenizer clip_tokenizer, text::T5Tokenizer t5_tokenizer,
                           models::ClipTextModel clip, models::T5Encoder t5,
                           models::FluxTransformer transformer, models::AutoencoderKL vae)
    : clip_tokenizer_(std::move(clip_tokenizer)),
      t5_tokenizer_(std::move(t5_tokenizer)),
      clip_(std::move(clip)),
      t5_(std::move(t5)),
      transformer_(std::move(transformer)),
      vae_(std::move(vae)) {}

FluxPipeline FluxPipeline::load(const FluxFiles& files, const models::Placement& placement) {
  // Read before the weights, so a bad value is reported at once.
  std::optional<SchedulerConfig> scheduler;
  bool kontext = false;
  std::vector<fs::path> controlnets = files.controlnets;
  if (!files.model_dir.empty()) {
    const fs::path index = files.model_dir / "model_index.json";
    if (!fs::is_regular_file(index))
      fail("[flux] {}: no model_index.json (expected a diffusers FLUX.1 folder)",
           files.model_dir.string());
    const std::string cls = read_json_file(index, kFamily).value("_class_name", "");
    if (!cls.starts_with("Flux"))
      fail("[flux] {}: _class_name is '{}', expected a FLUX.1 pipeline (FluxPipeline)",
           index.string(), cls);
    ZF_CHECK(cls != "FluxPriorReduxPipeline",
             "[flux] {} is FLUX.1 Redux, which makes no images itself: give it with --redux beside "
             "a FLUX.1 dev or schnell model",
             files.model_dir.string());
    kontext = cls == "FluxKontextPipeline" || cls == "FluxKontextInpaintPipeline";
    // A saved FluxControlNet(Img2Img / Inpaint)Pipeline holds its ControlNet beside the rest.
    if (controlnets.empty() && cls.starts_with("FluxControlNet") &&
        fs::is_directory(files.model_dir / "controlnet"))
      controlnets.push_back(files.model_dir / "controlnet");
    const fs::path scheduler_config = files.model_dir / "scheduler" / "scheduler_config.json";
    if (fs::is_regular_file(scheduler_config))
      scheduler = read_scheduler_config(scheduler_config, "flux");
  }
  auto path_of = [&](const fs::path& given, const char* sub, const char* what) {
    return component_path(kFamily, "FLUX.1", files.model_dir, given, sub, what);
  };
  const fs::path dit_path = path_of(files.diffusion_model, "transformer", "diffusion model");
  // A Kontext transformer has dev's shape: a lone file is known by its name (the release's
  // "flux1-kontext-dev.safetensors").
  kontext = kontext || (!files.diffusion_model.empty() && name_mentions(dit_path, "kontext"));
  const fs::path clip_path = path_of(files.clip, "text_encoder", "CLIP text encoder");
  const fs::path t5_path = path_of(files.t5, "text_encoder_2", "T5 text encoder");
  const fs::path vae_path = path_of(files.vae, "vae", "VAE");
  const fs::path clip_tok_path = path_of(files.clip_tokenizer, "tokenizer", "CLIP tokenizer");
  const fs::path t5_tok_path = path_of(files.t5_tokenizer, "tokenizer_2", "T5 tokenizer");

  auto clip_tokenizer = load_component(kFamily, "CLIP tokenizer", clip_tok_path,
                                       [&] { return text::ClipTokenizer::load(clip_tok_path); });
  auto t5_tokenizer = load_component(kFamily, "T5 tokenizer", t5_tok_path,
                                     [&] { return text::T5Tokenizer::load(t5_tok_path); });
  auto clip = load_component(kFamily, "CLIP text encoder", clip_path, [&] {
    return models::load_clip_text_model(clip_path, {}, placement);
  });
  auto t5 = load_component(kFamily, "T5 text encoder", t5_path,
                           [&] { return models::load_t5_encoder(t5_path, {}, placement); });
  auto transformer = load_component(kFamily, "diffusion model", dit_path, [&] {
    return models::load_flux_transformer(dit_path, {}, files.quantize, placement, files.loras);
  });
  auto vae = load_component(kFamily, "VAE", vae_path,
                            [&] { return models::load_autoencoder_kl(vae_path, {}, placement); });

  const auto& dit = transformer.config();
  if (clip.config().hidden_size != dit.pooled_projection_dim)
    fail(
        "[flux] CLIP text encoder {} gives {}-wide pooled outputs, but the diffusion model {} "
        "expects {} (pooled_projection_dim)",
        clip_path.string(), clip.config().hidden_size, dit_path.string(),
        dit.pooled_projection_dim);
  if (t5.config().d_model != dit.joint_attention_dim)
    fail(
        "[flux] T5 text encoder {} gives {}-wide states, but the diffusion model {} expects {} "
        "(joint_attention_dim)",
        t5_path.string(), t5.config().d_model, dit_path.string(), dit.joint_attention_dim);
  // A Fill transformer also reads the masked picture's latents and the folded mask; a Canny or
  // Depth one the control image's latents.
  const int64_t packed = vae.config().latent_channels * 4;
  const bool fill = dit.in_channels == flux_fill_in_channels(vae) && dit.out_channels == packed;
  const bool control =
      dit.in_channels == flux_control_in_channels(vae) && dit.out_channels == packed;
  if (dit.in_channels != packed && !fill && !control)
    fail(
        "[flux] VAE {} has {} latent channels, but the diffusion model {} reads {} features a "
        "token: expected {} ({} x 4), {} for FLUX.1 Fill or {} for FLUX.1 Canny / Depth",
        vae_path.string(), vae.config().latent_channels, dit_path.string(), dit.in_channels, packed,
        vae.config().latent_channels, flux_fill_in_channels(vae), flux_control_in_channels(vae));
  if ((fill || control) && !dit.guidance_embeds)
    fail("[flux] diffusion model {} is shaped as FLUX.1 {} but has no guidance embedder",
         dit_path.string(), fill ? "Fill" : "Canny / Depth");
  if (static_cast<int64_t>(t5_tokenizer.vocab_size()) > t5.config().vocab_size)
    fail("[flux] T5 tokenizer {} has {} ids, more than the T5 encoder's {} embeddings",
         t5_tok_path.string(), t5_tokenizer.vocab_size(), t5.config().vocab_size);

  FluxPipeline pipe(std::move(clip_tokenizer), std::move(t5_tokenizer), std::move(clip),
                    std::move(t5), std::move(transformer), std::move(vae));
  const bool guidance = pipe.transformer_.config().guidance_embeds;
  pipe.variant_ = fill        ? FluxVariant::FillDev
                  : control   ? FluxVariant::ControlDev
                  : !guidance ? FluxVariant::Schnell
                  : kontext   ? FluxVariant::KontextDev
                              : FluxVariant::Dev;
  pipe.defaults_ = flux_defaults(pipe.variant_);
  pipe.scheduler_ =
      scheduler.value_or(flux1_release_scheduler(pipe.variant_ != FluxVariant::Schnell));
  const fs::path named = files.model_dir.empty() ? files.diffusion_model : files.model_dir;
  pipe.model_name_ = (named.filename().empty() ? named.parent_path() : named).stem().string();
  ZF_CHECK(files.siglip.empty() || !files.redux.empty(),
           "[flux] --siglip {}: the SigLIP tower is read only for Redux (give --redux too)",
           files.siglip.string());
  if (!files.redux.empty()) pipe.load_redux(files, placement);
  if (!controlnets.empty()) pipe.load_controlnets(controlnets, placement);
  log::info("[flux] {} as {}: {} steps, guidance {}, T5 length {}", pipe.model_name_,
            flux_variant_name(pipe.variant_), pipe.defaults_.steps, pipe.defaults_.guidance,
            pipe.defaults_.max_sequence_length);
  const SchedulerConfig& sc = pipe.scheduler_;
  if (sc.use_dynamic_shifting)
    log::info("[flux] schedule ({}): dynamic shift {} .. {} over {} .. {} image tokens",
              scheduler ? "scheduler_config.json" : "release default", sc.base_shift, sc.max_shift,
              sc.base_image_seq_len, sc.max_image_seq_len);
  else
    log::info("[flux] schedule ({}): shift {}",
              scheduler ? "scheduler_config.json" : "release default", sc.shift);
  return pipe;
}

int64_t FluxPipeline::vae_scale_factor() const {
  return int64_t{1} << (vae_.config().levels() - 1);
}

void FluxPipeline::load_redux(const FluxFiles& files, const models::Placement& placement) {
  // A diffusers FLUX.1-Redux-dev folder holds both models; a single file only the embedder.
  const bool folder = fs::is_directory(files.redux / "image_embedder");
  const fs::path embedder = folder ? files.redux / "image_embedder" : files.redux;
  const fs::path tower = !files.siglip.empty() ? files.siglip
                         : folder              ? files.redux / "image_encoder"
                                               : fs::path();
  ZF_CHECK(!tower.empty(),
           "[flux] Redux {} needs SigLIP's vision tower too: give --siglip FILE "
           "(sigclip_vision_patch14_384.safetensors) or the FLUX.1-Redux-dev folder",
           files.redux.string());
  auto redux = std::make_shared<const models::ReduxImageEncoder>(
      load_component(kFamily, "Redux image embedder", embedder,
                     [&] { return models::load_redux_image_encoder(embedder, placement); }));
  auto siglip = std::make_shared<const models::SiglipVisionModel>(
      load_component(kFamily, "SigLIP vision tower", tower,
                     [&] { return models::load_siglip_vision_model(tower, placement); }));
  ZF_CHECK(siglip->config().hidden_size == redux->image_dim(),
           "[flux] SigLIP tower {} gives {}-wide states, but the Redux embedder {} reads {}",
           tower.string(), siglip->config().hidden_size, embedder.string(), redux->image_dim());
  ZF_CHECK(redux->text_dim() == transformer_.config().joint_attention_dim,
           "[flux] Redux embedder {} makes {}-wide tokens, but the transformer reads {} (T5's)",
           embedder.string(), redux->text_dim(), transformer_.config().joint_attention_dim);
  siglip_ = std::move(siglip);
  redux_ = std::move(redux);
  log::info("[flux] Redux: {} with SigLIP {} ({} image tokens)", embedder.string(), tower.string(),
            siglip_->config().patches());
}

void FluxPipeline::load_controlnets(std::span<const fs::path> paths,
                                    const models::Placement& placement) {
  for (const fs::path& path : paths) {
    ZF_CHECK(variant_ == FluxVariant::Dev || variant_ == FluxVariant::Schnell,
             "[flux] --control-net {}: FLUX.1 ControlNets steer dev or schnell, not {} ({})",
             path.string(), model_name_, flux_variant_name(variant_));
    auto controlnet = std::make_shared<const models::FluxControlNet>(
        load_component(kFamily, "ControlNet", path,
                       [&] { return models::load_flux_controlnet(path, placement); }));
    const models::FluxDiTConfig& main = transformer_.config();
    const models::FluxControlNetConfig& c = controlnet->config();
    ZF_CHECK(c.trunk.inner_dim() == main.inner_dim() && c.trunk.in_channels == main.in_channels &&
                 c.trunk.joint_attention_dim == main.joint_attention_dim &&
                 c.trunk.pooled_projection_dim == main.pooled_projection_dim,
             "[flux] ControlNet {} ({}) does not fit the transformer ({}): its width, input, text "
             "and pooled features must be the transformer's",
             path.string(), c.trunk.summary(), main.summary());
    // Side by side, their samples add block by block: the same blocks, fed the same way.
    if (!controlnets_.empty()) {
      const models::FluxControlNetConfig& first = controlnets_.front()->config();
      ZF_CHECK(c.trunk.num_layers == first.trunk.num_layers &&
                   c.trunk.num_single_layers == first.trunk.num_single_layers &&
                   c.takes_pixels() == first.takes_pixels(),
               "[flux] ControlNet {} ({}) cannot run beside {} ({}): side by side, ControlNets "
               "need the same blocks and the same kind of control (latents or pixels)",
               path.string(), c.summary(), controlnet_names_.front(), first.summary());
    }
    controlnets_.push_back(std::move(controlnet));
    controlnet_names_.push_back(
        (path.filename().empty() ? path.parent_path() : path).stem().string());
  }
}

Tensor FluxPipeline::redux_tokens(const io::Image& image) const {
  const Tensor states = siglip_->encode(models::siglip_pixels(image, siglip_->config().image_size));
  return redux_->embed(states);
}

FluxSettings FluxPipeline::resolve(const FluxRequest& request) const {
  FluxSettings s{};
  const io::Image* init = request.init_image ? &*request.init_image : nullptr;
  const io::Image* mask = request.mask ? &*request.mask : nullptr;
  const io::Image* control = request.controls.empty() ? nullptr : &request.controls.front().image;
  const int64_t multiple = 2 * vae_scale_factor();
  const bool from_latents = request.init_latents.has_value();
  if (from_latents) {
    ZF_CHECK(!init && !mask && request.references.empty(),
             "[flux] init latents start an img2img of their own: no init image, mask or "
             "reference image with them");
    std::tie(s.width, s.height) =
        init_latents_size("flux", *request.init_latents, request.width, request.height,
                          vae_scale_factor(), vae_.config().latent_channels, multiple);
  } else {
    std::tie(s.width, s.height) =
        checked_image_size("flux", request.width, request.height, init, mask, multiple, control);
  }
  s.mode = mask                   ? FluxMode::Inpaint
           : init || from_latents ? FluxMode::ImageToImage
                                  : FluxMode::TextToImage;
  const bool fill = variant_ == FluxVariant::FillDev;
  const bool controlled = variant_ == FluxVariant::ControlDev;
  s.controlnet = !controlnets_.empty();
  ZF_CHECK(!(controlled || s.controlnet) || control,
           "[flux] {} draws what its control image shows: give one (--control-image: {})",
           s.controlnet ? "the ControlNet" : model_name_,
           s.controlnet ? "edges, depth, pose, ... as the ControlNet was trained on"
                        : "an edge map for Canny-dev, a depth map for Depth-dev");
  ZF_CHECK(controlled || s.controlnet || !control,
           "[flux] {} takes no control image without a ControlNet (--control-net; FLUX.1 "
           "Canny-dev and Depth-dev take one alone)",
           model_name_);
  // With an init image: img2img as FluxControl(Net)Img2ImgPipeline, inpaint as
  // FluxControl(Net)InpaintPipeline.
  if ((controlled || s.controlnet) && !init && !from_latents) s.mode = FluxMode::Control;
  resolve_controlnet(request, s);
  const io::Image* reference = request.references.empty() ? nullptr : &request.references.front();
  s.redux = reference && redux_;
  ZF_CHECK(s.redux || request.references.size() <= 1,
           "[flux] {} reference images: FLUX.1 Kontext edits one (Redux varies several; FLUX.2 "
           "takes several as references)",
           request.references.size());
  ZF_CHECK(s.redux || !request.redux_strength,
           "[flux] the Redux strength weighs Redux's image tokens: load Redux (--redux) and give "
           "its picture (-r)");
  s.redux_strength = request.redux_strength.value_or(1.0f);
  ZF_CHECK(std::isfinite(s.redux_strength) && s.redux_strength >= 0.0f,
           "[flux] the Redux strength must be a number of 0 or more, got {}", s.redux_strength);
  // Kontext inpaints as FluxKontextInpaintPipeline: at the picture's Kontext resolution, which is
  // its own reference unless another is given.
  s.kontext_inpaint = variant_ == FluxVariant::KontextDev && mask && !s.redux;
  if (s.kontext_inpaint) {
    const auto [w, h] = kontext_resolution(init->width, init->height, multiple);
    s.width = request.width.value_or(w);
    s.height = request.height.value_or(h);
    if (reference)  // checked as Kontext checks it
      kontext_resolution(reference->width, reference->height, multiple);
  }
  if (s.redux) {
    ZF_CHECK(variant_ != FluxVariant::KontextDev,
             "[flux] {} with Redux: the reference image would be both Kontext's picture to edit "
             "and Redux's to vary; load one of them",
             model_name_);
  } else if (reference && !s.kontext_inpaint) {
    ZF_CHECK(!init,
             "[flux] a reference image edits as FLUX.1 Kontext, which takes no init image (Kontext "
             "inpaints one with a mask, -i and --mask: a Kontext model it knows as one)");
    ZF_CHECK(variant_ == FluxVariant::Dev || variant_ == FluxVariant::KontextDev,
             "[flux] {} ({}) takes no reference image (FLUX.1 Kontext does)", model_name_,
             flux_variant_name(variant_));
    s.mode = FluxMode::Edit;
    const auto [w, h] = kontext_resolution(reference->width, reference->height,
                                           multiple);  // checks the reference
    s.width = request.width.value_or(w);
    s.height = request.height.value_or(h);
  }
  const bool from_image = starts_from_image(s.mode);
  ZF_CHECK(!fill || s.mode == FluxMode::Inpaint,
           "[flux] {} fills the white part of a mask: give an init image and a mask (-i and "
           "--mask, or --outpaint)",
           model_name_);
  s.steps = request.steps.value_or(defaults_.steps);
  ZF_CHECK(s.steps >= 1, "[flux] steps must be at least 1, got {}", s.steps);
  if (variant_ != FluxVariant::Schnell) {
    // FluxKontextInpaintPipeline keeps the text-to-image guidance (diffusers' 3.5).
    s.guidance = request.guidance.value_or(
        from_image && !s.kontext_inpaint ? defaults_.guidance_img2img : defaults_.guidance);
    ZF_CHECK(std::isfinite(s.guidance), "[flux] guidance must be finite");
  } else if (std::any_of(controlnets_.begin(), controlnets_.end(),
                         [](const auto& net) { return net->config().trunk.guidance_embeds; })) {
    // schnell has no guidance input, but a ControlNet may (diffusers passes guidance_scale).
    s.guidance = request.guidance.value_or(flux_defaults(FluxVariant::Dev).guidance);
    ZF_CHECK(std::isfinite(s.guidance), "[flux] guidance must be finite");
  } else if (request.guidance) {
    log::warn("[flux] {} has no guidance input: guidance {} is ignored",
              flux_variant_name(variant_), *request.guidance);
  }
  // True CFG as diffusers runs it when true_cfg_scale > 1 and a negative prompt is given; either
  // one alone would be ignored there, so it is an error here.
  s.true_cfg_scale = request.true_cfg_scale.value_or(1.0f);
  ZF_CHECK(std::isfinite(s.true_cfg_scale) && s.true_cfg_scale >= 1.0f,
           "[flux] true_cfg_scale must be above 1 for true CFG, or 1 for none; got {}",
           s.true_cfg_scale);
  ZF_CHECK(!request.negative_prompt_2 || request.negative_prompt,
           "[flux] negative_prompt_2 needs negative_prompt (true CFG's CLIP prompt)");
  s.true_cfg = s.true_cfg_scale > 1.0f;
  ZF_CHECK(!(fill || controlled) || !s.true_cfg,
           "[flux] {}: {} runs without true CFG (diffusers' {} has none)", model_name_,
           flux_variant_name(variant_), fill ? "FluxFillPipeline" : "FluxControlPipeline");
  ZF_CHECK(!s.redux || !s.true_cfg,
           "[flux] Redux runs without true CFG: its image tokens have no negative counterpart");
  ZF_CHECK(!s.true_cfg || request.negative_prompt,
           "[flux] true_cfg_scale {} needs a negative_prompt: true CFG steers away from it; give "
           "one, or leave true_cfg_scale at 1",
           s.true_cfg_scale);
  ZF_CHECK(s.true_cfg || !request.negative_prompt,
           "[flux] negative_prompt is used only by true CFG: set true_cfg_scale above 1 too");
  ZF_CHECK(from_image || !request.strength, "[flux] strength needs an init image");
  s.strength = !from_image ? 1.0 : request.strength.value_or(fill || s.kontext_inpaint ? 1.0 : 0.6);
  if (from_image) img2img_start(s.steps, s.strength);  // throws if bad
  ZF_CHECK(request.batch >= 1, "[flux] batch must be at least 1, got {}", request.batch);
  // FluxPriorReduxPipeline encodes the prompt at T5's full 512 tokens, schnell's too.
  s.max_sequence_length = request.max_sequence_length.value_or(
      s.redux ? text::kT5DevMaxLength : defaults_.max_sequence_length);
  s.shift = request.shift;
  s.schedule = effective_schedule(scheduler_, request.sampling.schedule);
  ZF_CHECK(!s.shift || (std::isfinite(*s.shift) && *s.shift > 0.0),
           "[flux] shift must be a positive number, got {}", s.shift.value_or(0.0));
  ZF_CHECK(s.max_sequence_length >= 1 && s.max_sequence_length <= kMaxT5Length,
           "[flux] max_sequence_length must be in [1, {}], got {}", kMaxT5Length,
           s.max_sequence_length);
  if (const auto& threshold = request.first_block_cache) {
    ZF_CHECK(*threshold > 0.0f && std::isfinite(*threshold),
             "[flux] first-block cache threshold must be positive, got {}", *threshold);
    ZF_CHECK(!s.controlnet,
             "[flux] first-block cache: not with a ControlNet (zflow caches runs "
             "without one)");
  }
  return s;
}

void FluxPipeline::resolve_controlnet(const FluxRequest& request, FluxSettings& s) const {
  if (!s.controlnet) {
    ZF_CHECK(request.controls.size() <= 1,
             "[flux] {} control images: FLUX.1 Canny-dev and Depth-dev draw from one (a "
             "ControlNet, --control-net, reads several)",
             request.controls.size());
    for (const ControlInput& c : request.controls)
      ZF_CHECK(!c.scale && !c.start && !c.end && !c.mode,
               "[flux] control strength, start, end and mode are a ControlNet's: load one with "
               "--control-net");
    return;
  }
  // One ControlNet reads every control; several read one each, in order.
  const size_t nets = controlnets_.size();
  ZF_CHECK(nets == 1 || request.controls.size() == nets,
           "[flux] {} ControlNets side by side read one control image each: give {}, got {}", nets,
           nets, request.controls.size());
  for (size_t i = 0; i < request.controls.size(); ++i) {
    const ControlInput& c = request.controls[i];
    FluxSettings::Control r{c.scale.value_or(1.0f), c.start.value_or(0.0), c.end.value_or(1.0),
                            c.mode, nets == 1 ? 0 : i};
    const int64_t modes = controlnets_[r.net]->config().num_mode;
    ZF_CHECK(std::isfinite(r.scale), "[flux] control image {}: its strength must be finite", i + 1);
    ZF_CHECK(r.start >= 0.0 && r.start < r.end && r.end <= 1.0,
             "[flux] control image {}: the ControlNet's part of the schedule must satisfy 0 <= "
             "start < end <= 1; got start {} end {}",
             i + 1, r.start, r.end);
    if (modes > 0)
      ZF_CHECK(r.mode && *r.mode >= 0 && *r.mode < modes,
               "[flux] control image {}: the Union ControlNet needs a control mode in 0..{} "
               "(--control-mode; the InstantX and Shakker-Labs releases: {})",
               i + 1, modes - 1, flux_union_modes());
    else
      ZF_CHECK(!r.mode, "[flux] --control-mode: this ControlNet has no modes (only Union ones do)");
    s.controls.push_back(r);
  }
}

bool FluxPipeline::can_share_forwards(const FluxRequest& a, const FluxRequest& b) const {
  // References and control maps condition only their own request's images.
  if (!a.references.empty() || !b.references.empty() || !a.controls.empty() || !b.controls.empty())
    return false;
  const auto settings = resolved_shareable(*this, a, b);
  if (!settings) return false;
  const auto& [sa, sb] = *settings;
  return sa.width == sb.width && sa.height == sb.height && sa.steps == sb.steps &&
         sa.guidance == sb.guidance && sa.true_cfg_scale == sb.true_cfg_scale &&
         sa.max_sequence_length == sb.max_sequence_length && sa.shift == sb.shift &&
         a.normal_math == b.normal_math && a.vae_tiling == b.vae_tiling &&
         a.sampling == b.sampling && !is_stochastic(a.sampling.sampler) &&
         // the cache decides on the whole batch, which would tie the requests together
         !a.first_block_cache && !b.first_block_cache;
}

std::vector<io::Image> FluxPipeline::generate(const FluxRequest& request,
                                              const RunControl& control) const {
  return std::move(generate_together({&request, 1}, control).front());
}

std::vector<std::vector<io::Image>> FluxPipeline::generate_together(
    std::span<const FluxRequest> requests, const RunControl& control) const {
  const Tensor latents = denoise_together(requests, control);
  Stopwatch clock;
  const Tensor image = models::decode_latents(vae_, latents, requests.front().vae_tiling);
  log::info("[flux] decoded in {:.2f} s", clock.lap());
  return split_by_request(tensor_to_images(image), requests);
}

std::vector<Tensor> FluxPipeline::generate_latents_together(std::span<const FluxRequest> requests,
                                                            const RunControl& control) const {
  return split_batch(denoise_together(requests, control));
}

Tensor FluxPipeline::denoise_together(std::span<const FluxRequest> requests,
                                      const RunControl& control) const {
  require_shareable("flux", *this, requests);
  const FluxRequest& first = requests.front();
  const FluxSettings s = resolve(first);
  int64_t batch = 0;
  for (const FluxRequest& r : requests) batch += r.batch;
  Stopwatch clock;

  // Text: CLIP's pooled output of each request's prompt, T5's states of its prompt_2 (or the
  // prompt), for every image of the request; with true CFG the negative prompts' after all of
  // them ([B + B, ...]).
  auto encode = [&](const std::string& prompt, const std::string& prompt_2, int64_t copies) {
    const Tensor pooled =
        repeat_sample(clip_.encode(clip_tokenizer_.encode(prompt)).pooled, copies);
    const Tensor txt = repeat_sample(
        t5_.encode(t5_tokenizer_.encode_padded(prompt_2, s.max_sequence_length)), copies);
    return std::pair{pooled, txt};
  };
  std::vector<Tensor> pooled_parts, txt_parts;
  for (const bool negative : {false, true}) {
    if (negative && !s.true_cfg) break;
    for (const FluxRequest& r : requests) {
      const auto [pooled, txt] =
          negative ? encode(*r.negative_prompt, r.negative_prompt_2.value_or(*r.negative_prompt),
                            r.batch)
                   : encode(r.prompt, r.prompt_2.value_or(r.prompt), r.batch);
      pooled_parts.push_back(pooled);
      txt_parts.push_back(txt);
    }
  }
  auto joined = [](const std::vector<Tensor>& parts) {
    return parts.size() == 1 ? parts.front() : ops::concat(parts, 0);
  };
  const Tensor pooled = joined(pooled_parts);
  Tensor txt = joined(txt_parts);
  // Redux: the reference images' tokens after every sample's T5 states (a lone request's).
  if (s.redux) {
    std::vector<Tensor> parts = {txt};
    for (const io::Image& image : first.references)
      parts.push_back(repeat_sample(ops::mul_scalar(redux_tokens(image), s.redux_strength), batch));
    txt = ops::concat(parts, 1);
  }
  const int64_t samples = s.true_cfg ? 2 * batch : batch;  // per transformer call
  log::info("[flux] prompts encoded in {:.2f} s", clock.lap());

  // Schedule and start latents [B, 16, h, w], request by request from its own seed; the loop
  // runs unpacked (every update is element-wise) and packs for each transformer call.
  const int64_t cells = 2 * vae_scale_factor();
  const int64_t rows = s.height / cells, cols = s.width / cells;
  const int64_t channels = vae_.config().latent_channels;
  SchedulerConfig scheduler = scheduler_;
  if (s.shift) {
    scheduler.use_dynamic_shifting = false;
    scheduler.shift = *s.shift;
  }
  FlowSchedule schedule = respace(flux1_schedule(scheduler, s.steps, rows * cols), s.schedule);
  if (starts_from_image(s.mode))
    schedule = schedule.starting_at(img2img_start(s.steps, s.strength));
  const bool fill = variant_ == FluxVariant::FillDev;
  std::vector<Tensor> starts;
  std::optional<FlowInpaint> inpaint;  // a lone inpaint request's
  // A lone Fill or Canny / Depth request's condition, read beside each noisy token.
  std::optional<Tensor> condition;
  std::vector<Tensor> control_inputs;  // a lone ControlNet request's, one per control
  for (const FluxRequest& r : requests) {
    Generator generator(r.seed, r.normal_math);
    // Drawn before the start latents, in order, as diffusers does.
    if (s.controlnet) {
      for (size_t k = 0; k < r.controls.size(); ++k)
        control_inputs.push_back(flux_controlnet_input(*controlnets_[s.controls[k].net], vae_,
                                                       generator, r.controls[k].image, s.width,
                                                       s.height, r.batch, r.vae_tiling));
    } else if (!r.controls.empty()) {
      // FluxControlInpaintPipeline first encodes the masked picture, whose posterior sample it
      // never reads: only its draw matters.
      if (r.mask) generator.randn({1, channels, 2 * rows, 2 * cols});
      condition = flux_control_condition(vae_, generator, r.controls.front().image, s.width,
                                         s.height, r.batch, r.vae_tiling);
    }
    // Fill starts as img2img does (its mask shaping only a latent masked content); the mask
    // conditions its forwards instead of the blend.
    StartLatents start =
        start_latents(vae_, generator, {r.batch, channels, 2 * rows, 2 * cols}, schedule.sigmas[0],
                      {.init = r.init_image ? &*r.init_image : nullptr,
                       .init_latents = r.init_latents ? &*r.init_latents : nullptr,
                       .mask = r.mask ? &*r.mask : nullptr,
                       .content = r.masked_content,
                       .vae_tiling = r.vae_tiling,
                       .encoding = s.kontext_inpaint ? InitLatents::Mode : InitLatents::Sample,
                       .variation = r.variation});
    starts.push_back(std::move(start.latents));
    if (!fill) inpaint = std::move(start.inpaint);
    if (fill)
      condition = flux_fill_condition(vae_, generator, *r.init_image, *r.mask, s.width, s.height,
                                      r.batch, r.vae_tiling);
  }

  std::vector<models::FluxPosition> img_ids = models::flux_image_ids(rows, cols);
  // Kontext: the reference's tokens follow the noisy ones in every forward (a lone request's).
  std::optional<Tensor> reference_tokens;
  if ((!first.references.empty() && !s.redux) || s.kontext_inpaint) {
    // A Kontext transformer looks like dev's: only a folder's class or a file's name tells.
    if (variant_ != FluxVariant::KontextDev)
      log::warn(
          "[flux] {} is not known to be FLUX.1 Kontext: a FLUX.1 dev transformer edits "
          "nothing with a reference image",
          model_name_);
    const KontextReference reference =
        !first.references.empty()
            ? kontext_reference(vae_, first.references.front(), first.vae_tiling)
            : kontext_tokens(vae_, *first.init_image, s.width, s.height, first.vae_tiling);
    reference_tokens = repeat_batch(reference.tokens, samples);
    img_ids.insert(img_ids.end(), reference.ids.begin(), reference.ids.end());
  }
  const std::vector<float> guidance(variant_ != FluxVariant::Schnell ? samples : 0, s.guidance);
  // The ControlNets run on the positive samples; a guidance embedder reads the settings' guidance
  // (diffusers passes guidance_scale to them and the transformer).
  const std::vector<float> controlnet_guidance(static_cast<size_t>(batch), s.guidance);
  auto positives = [&](const Tensor& both) {
    return s.true_cfg ? both.slice(0, 0, batch).contiguous() : both;
  };
  // The texts do not change from step to step: their positive halves are cut once.
  const Tensor controlnet_txt = control_inputs.empty() ? Tensor() : positives(txt);
  const Tensor controlnet_pooled = control_inputs.empty() ? Tensor() : positives(pooled);
  // diffusers' FluxPipeline runs true CFG's passes in cache contexts "cond" and "uncond": the
  // halves of the batched forward keep their own state.
  std::optional<models::FirstBlockCache> cache;
  if (first.first_block_cache) cache.emplace(*first.first_block_cache, s.true_cfg ? 2 : 1);
  const FlowVelocity velocity = [&](const Tensor& x, int i) {
    const std::vector<float> t(static_cast<size_t>(samples),
                               flux_model_time(schedule.timesteps[static_cast<size_t>(i)]));
    Tensor tokens = models::flux_pack_latents(s.true_cfg ? repeat_batch(x, 2) : x);
    if (condition) tokens = ops::concat({tokens, *condition}, 2);
    if (reference_tokens) tokens = ops::concat({tokens, *reference_tokens}, 1);
    // Each control acting at this step runs its ControlNet; their samples add up
    // (FluxMultiControlNetModel).
    std::optional<models::FluxTransformer::ControlSamples> control_samples;
    const Tensor controlnet_tokens = control_inputs.empty() ? Tensor() : positives(tokens);
    for (size_t k = 0; k < control_inputs.size(); ++k) {
      const FluxSettings::Control& c = s.controls[k];
      if (!flux_controlnet_acts(i, schedule.steps(), c.start, c.end)) continue;
      const models::FluxControlNet& net = *controlnets_[c.net];
      models::FluxTransformer::ControlSamples one = net.forward(
          controlnet_tokens, img_ids, controlnet_txt, controlnet_pooled,
          std::span<const float>(t).first(static_cast<size_t>(batch)),
          net.config().trunk.guidance_embeds ? std::span<const float>(controlnet_guidance)
                                             : std::span<const float>{},
          control_inputs[k], c.mode, c.scale);
      if (!control_samples) {
        control_samples = std::move(one);
        continue;
      }
      for (size_t b = 0; b < one.double_blocks.size(); ++b)
        control_samples->double_blocks[b] =
            ops::add(control_samples->double_blocks[b], one.double_blocks[b]);
      for (size_t b = 0; b < one.single_blocks.size(); ++b)
        control_samples->single_blocks[b] =
            ops::add(control_samples->single_blocks[b], one.single_blocks[b]);
    }
    if (control_samples && s.true_cfg)  // the negative half gets the same samples
      for (auto* part : {&control_samples->double_blocks, &control_samples->single_blocks})
        for (Tensor& sample : *part) sample = repeat_batch(sample, 2);
    const Tensor out = transformer_.forward(tokens, img_ids, txt, pooled, t, guidance,
                                            control_samples ? &*control_samples : nullptr,
                                            cache ? &*cache : nullptr);
    const Tensor v =
        models::flux_unpack_latents(out.slice(1, 0, rows * cols).contiguous(), 2 * rows, 2 * cols);
    return s.true_cfg ? combine_guidance(v, s.true_cfg_scale) : v;
  };
  const Tensor start = joined(starts);
  const Tensor latents = flow_denoise(velocity, start, schedule, inpaint ? &*inpaint : nullptr,
                                      with_previews(control, vae_), first.sampling.sampler,
                                      sampler_noise(first.seed, first.normal_math, start.shape()));
  const double denoise_seconds = clock.lap();
  log::info("[flux] {} steps in {:.2f} s ({:.2f} s/step)", schedule.steps(), denoise_seconds,
            denoise_seconds / schedule.steps());
  if (cache)
    log::info("[flux] first-block cache: {} of {} forwards ran one block", cache->skipped_calls(),
              cache->calls());
  return latents;
}

}  // namespace zflow::pipeline
