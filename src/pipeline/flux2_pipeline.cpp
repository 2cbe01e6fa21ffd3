#include "pipeline/flux2_pipeline.h"

#include <cmath>
#include <tuple>
#include <utility>

#include "backend/ops.h"
#include "core/error.h"
#include "core/log.h"
#include "core/stopwatch.h"
#include "pipeline/flow_denoise.h"
#include "pipeline/flow_euler.h"
#include "pipeline/flux2_references.h"
#include "pipeline/image_tensor.h"
#include "pipeline/masked_content.h"
#include "pipeline/pipeline_files.h"
#include "pipeline/preview.h"
#include "pipeline/shared_forwards.h"
#include "pipeline/start_latents.h"
#include "sampling/flow_schedule.h"
#include "text/chat_template.h"
#include "text/tekken_tokenizer.h"

namespace zflow::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFamily = "flux2";

// The pipelines' text_encoder_out_layers: the hidden states after these layers, Qwen3's for
// klein (Flux2KleinPipeline), Mistral-Small's for dev (Flux2Pipeline).
std::vector<int> text_taps(bool dev) {
  return dev ? std::vector<int>{10, 20, 30} : std::vector<int>{9, 18, 27};
}

// [B, C, h, w] -> [B, h w, C] and back (diffusers _pack_latents, _unpack_latents_with_ids for
// row-major ids).
Tensor to_tokens(const Tensor& latents) {
  const int64_t b = latents.size(0), c = latents.size(1);
  return latents.contiguous()
      .view({b, c, latents.size(2) * latents.size(3)})
      .permute({0, 2, 1})
      .contiguous();
}
Tensor from_tokens(const Tensor& tokens, int64_t rows, int64_t cols) {
  const int64_t b = tokens.size(0), c = tokens.size(2);
  return tokens.permute({0, 2, 1}).contiguous().view({b, c, rows, cols});
}

}  // namespace

const char* flux2_mode_name(Flux2Mode mode) {
  switch (mode) {
    case Flux2Mode::TextToImage:
      return "txt2img";
    case Flux2Mode::ImageToImage:
      return "img2img";
    case Flux2Mode::Inpaint:
      return "inpaint";
  }
  return "txt2img";
}

const char* flux2_variant_name(Flux2Variant variant) {
  switch (variant) {
    case Flux2Variant::Klein:
      return "FLUX.2-klein";
    case Flux2Variant::KleinKv:
      return "FLUX.2-klein-kv";
    case Flux2Variant::KleinBase:
      return "FLUX.2-klein-base";
    case Flux2Variant::Dev:
      return "FLUX.2-dev";
  }
  return "FLUX.2";
}

Flux2Defaults flux2_defaults(Flux2Variant variant) {
  // Flux2KleinPipeline: 50 steps and guidance 4 by default, CFG only when not distilled; the
  // distilled models' cards (and stable-diffusion.cpp's docs) run 4 steps without CFG.
  // Flux2Pipeline (dev): 50 steps, embedded guidance 4, no CFG.
  switch (variant) {
    case Flux2Variant::Klein:
    case Flux2Variant::KleinKv:
      return {4, 1.0f, 0.0f};
    case Flux2Variant::KleinBase:
      return {50, 4.0f, 0.0f};
    case Flux2Variant::Dev:
      return {50, 1.0f, 4.0f};
  }
  return {};
}

Flux2Pipeline::Flux2Pipeline(text::BpeTokenizer tokenizer, models::Qwen3TextEncoder text_encoder,
                             models::Flux2Transformer transformer, models::Flux2Autoencoder vae,
                             Flux2Variant variant)
    : tokenizer_(std::move(tokenizer)),
      text_encoder_(std::move(text_encoder)),
      transformer_(std::move(transformer)),
      vae_(std::move(vae)),
      variant_(variant) {}

Flux2Pipeline Flux2Pipeline::load(const Flux2Files& files, const models::Placement& placement) {
  // Read before the weights, so a bad value is reported at once.
  std::optional<SchedulerConfig> scheduler;
  std::optional<bool> distilled;
  std::optional<bool> dev_folder;  // model_index.json's class: Flux2Pipeline is dev
  bool kv_folder = false;          // Flux2KleinKVPipeline
  if (!files.model_dir.empty()) {
    const fs::path index = files.model_dir / "model_index.json";
    if (!fs::is_regular_file(index))
      fail("[flux2] {}: no model_index.json (expected a diffusers FLUX.2 folder)",
           files.model_dir.string());
    const nlohmann::json json = read_json_file(index, kFamily);
    const std::string cls = json.value("_class_name", "");
    if (cls != "Flux2KleinPipeline" && cls != "Flux2KleinKVPipeline" && cls != "Flux2Pipeline")
      fail(
          "[flux2] {}: _class_name is '{}', expected \"Flux2KleinPipeline\", "
          "\"Flux2KleinKVPipeline\" or \"Flux2Pipeline\"",
          index.string(), cls);
    dev_folder = cls == "Flux2Pipeline";
    kv_folder = cls == "Flux2KleinKVPipeline";
    if (json.contains("is_distilled")) {
      ZF_CHECK(json["is_distilled"].is_boolean(), "[flux2] {}: is_distilled must be true or false",
               index.string());
      distilled = json["is_distilled"].get<bool>();
    }
    const fs::path scheduler_config = files.model_dir / "scheduler" / "scheduler_config.json";
    if (fs::is_regular_file(scheduler_config))
      scheduler = read_scheduler_config(scheduler_config, "flux2");
  }
  auto path_of = [&](const fs::path& given, const char* sub, const char* what) {
    return component_path(kFamily, "FLUX.2", files.model_dir, given, sub, what);
  };
  const fs::path dit_path = path_of(files.diffusion_model, "transformer", "diffusion model");
  const fs::path te_path = path_of(files.text_encoder, "text_encoder", "text encoder");
  const fs::path vae_path = path_of(files.vae, "vae", "VAE");

  // The transformer first: its guidance embedder tells dev (Mistral) from klein (Qwen3).
  auto transformer = load_component(kFamily, "diffusion model", dit_path, [&] {
    return models::load_flux2_transformer(dit_path, std::nullopt, files.quantize, placement,
                                          files.loras);
  });
  const auto& dit = transformer.config();
  const bool dev = dit.guidance_embeds;
  if (dev_folder && *dev_folder != dev)
    fail("[flux2] {}: model_index.json names {}, but its transformer {} a guidance embedder",
         files.model_dir.string(), *dev_folder ? "Flux2Pipeline (dev)" : "Flux2KleinPipeline",
         dev ? "has" : "has no");
  // A GGUF text encoder carries its tokenizer: it serves when none is given.
  std::optional<text::BpeTokenizer> gguf_tokenizer =
      gguf_text_encoder_tokenizer(files.tokenizer, files.model_dir, te_path);
  const fs::path tok_path =
      gguf_tokenizer ? te_path : path_of(files.tokenizer, "tokenizer", "tokenizer");
  auto tokenizer = gguf_tokenizer ? std::move(*gguf_tokenizer)
                                  : load_component(kFamily, "tokenizer", tok_path, [&] {
                                      return dev ? text::load_tekken_tokenizer(tok_path)
                                                 : text::load_bpe_tokenizer(tok_path);
                                    });
  if (dev && !(tokenizer.token_to_id("[SYSTEM_PROMPT]") && tokenizer.token_to_id("<pad>")))
    fail(
        "[flux2] tokenizer {} has no [SYSTEM_PROMPT] or <pad> token: FLUX.2-dev needs the "
        "Mistral-Small tokenizer (Tekken)",
        tok_path.string());
  auto text_encoder = load_component(kFamily, "text encoder", te_path, [&] {
    return models::load_qwen3_text_encoder(te_path, std::nullopt, placement, text_taps(dev));
  });
  auto vae = load_component(kFamily, "VAE", vae_path,
                            [&] { return models::load_flux2_autoencoder(vae_path, placement); });

  if (text_encoder.config().qk_norm == dev)
    fail("[flux2] text encoder {} is {}, but the diffusion model {} is FLUX.2-{}, which reads {}",
         te_path.string(), dev ? "a Qwen3 model" : "a Mistral model", dit_path.string(),
         dev ? "dev" : "klein", dev ? "Mistral-Small-3.2" : "Qwen3");
  if (text_encoder.output_features() != dit.joint_attention_dim)
    fail(
        "[flux2] text encoder {} gives {}-wide states (3 x hidden {}), but the diffusion model {} "
        "expects {} (joint_attention_dim): klein 4B reads Qwen3-4B, klein 9B Qwen3-8B, dev "
        "Mistral-Small-3.2",
        te_path.string(), text_encoder.output_features(), text_encoder.config().hidden_size,
        dit_path.string(), dit.joint_attention_dim);
  if (vae.latent_channels() != dit.in_channels)
    fail(
        "[flux2] VAE {} gives {} patchified latent channels, but the diffusion model {} expects "
        "{}",
        vae_path.string(), vae.latent_channels(), dit_path.string(), dit.in_channels);
  for (const auto& t : tokenizer.added_tokens())
    if (t.id >= text_encoder.config().vocab_size)
      fail("[flux2] tokenizer {} has id {} ('{}') past the text encoder's {} embeddings",
           tok_path.string(), t.id, t.content, text_encoder.config().vocab_size);

  const fs::path named = files.model_dir.empty() ? files.diffusion_model : files.model_dir;
  const bool kv = kv_folder || (files.model_dir.empty() &&
                                (name_mentions(named, "-kv") || name_mentions(named, "_kv")));
  const Flux2Variant variant = dev  ? Flux2Variant::Dev
                               : kv ? Flux2Variant::KleinKv
                               : distilled.value_or(!name_mentions(named, "base"))
                                   ? Flux2Variant::Klein
                                   : Flux2Variant::KleinBase;
  Flux2Pipeline pipe(std::move(tokenizer), std::move(text_encoder), std::move(transformer),
                     std::move(vae), variant);
  pipe.defaults_ = flux2_defaults(variant);
  pipe.scheduler_ = scheduler.value_or(flux2_release_scheduler());
  pipe.model_name_ = (named.filename().empty() ? named.parent_path() : named).stem().string();
  log::info("[flux2] {} as {} ({}): {} steps, CFG {}, guidance {}", pipe.model_name_,
            flux2_variant_name(variant),
            dev         ? "its guidance embedder"
            : kv        ? (kv_folder ? "model_index.json's class" : "by its name")
            : distilled ? "model_index.json's is_distilled"
                        : "by its name",
            pipe.defaults_.steps, pipe.defaults_.cfg_scale, pipe.defaults_.guidance);
  return pipe;
}

Flux2Settings Flux2Pipeline::resolve(const Flux2Request& request) const {
  Flux2Settings s{};
  const io::Image* init = request.init_image ? &*request.init_image : nullptr;
  s.mode = request.mask ? Flux2Mode::Inpaint
           : init       ? Flux2Mode::ImageToImage
                        : Flux2Mode::TextToImage;
  if (init || request.mask) {
    ZF_CHECK(variant_ != Flux2Variant::Dev && variant_ != Flux2Variant::KleinKv,
             "[flux2] {} takes no init image or mask (diffusers inpaints with klein and klein "
             "base only); give the image as a reference image to edit it",
             flux2_variant_name(variant_));
    ZF_CHECK(init, "[flux2] a mask needs an init image to inpaint");
  }
  ZF_CHECK(init || !request.strength, "[flux2] strength needs an init image");
  // The size defaults to the first reference's as the pipeline prepares it.
  std::optional<std::pair<int, int>> first;
  for (size_t i = 0; i < request.references.size(); ++i) {
    const auto size = flux2_reference_size(request.references[i], scale_factor(), i);
    if (i == 0) first = size;
  }
  if (init) {
    // The pipeline generates at the prepared init image's size, whatever was asked.
    std::tie(s.width, s.height) = flux2_init_size(*init, scale_factor());
    ZF_CHECK((!request.width || *request.width == s.width) &&
                 (!request.height || *request.height == s.height),
             "[flux2] size {}x{}: klein's inpainting and img2img run at the init image's size, "
             "{}x{} here (its {}x{} rounded down to multiples of {}, after a resize past 1024^2 "
             "pixels); leave width and height out",
             request.width.value_or(s.width), request.height.value_or(s.height), s.width, s.height,
             init->width, init->height, scale_factor());
  } else {
    std::tie(s.width, s.height) = checked_image_size(kFamily,
                                                     request.width ? request.width
                                                     : first       ? std::optional(first->first)
                                                                   : std::nullopt,
                                                     request.height ? request.height
                                                     : first        ? std::optional(first->second)
                                                                    : std::nullopt,
                                                     nullptr, nullptr, scale_factor());
  }
  s.steps = request.steps.value_or(defaults_.steps);
  ZF_CHECK(s.steps >= 1, "[flux2] steps must be at least 1, got {}", s.steps);
  // Flux2KleinInpaintPipeline's default strength.
  s.strength = init ? request.strength.value_or(0.8) : 1.0;
  if (init) img2img_start(s.steps, s.strength);  // throws when no step would run
  s.cfg_scale = request.cfg_scale.value_or(defaults_.cfg_scale);
  ZF_CHECK(std::isfinite(s.cfg_scale) && s.cfg_scale >= 0.0f,
           "[flux2] cfg_scale must be a finite number >= 0 (1 or less: none), got {}", s.cfg_scale);
  s.cfg = s.cfg_scale > 1.0f;
  ZF_CHECK(!s.cfg || variant_ != Flux2Variant::Dev,
           "[flux2] FLUX.2-dev is guidance-distilled and runs without CFG (cfg_scale {}): set "
           "guidance, its embedded guidance (default {}), instead",
           s.cfg_scale, defaults_.guidance);
  if (variant_ == Flux2Variant::Dev) {
    s.guidance = request.guidance.value_or(defaults_.guidance);
    ZF_CHECK(std::isfinite(s.guidance) && s.guidance >= 0.0f,
             "[flux2] guidance must be a finite number >= 0, got {}", s.guidance);
  } else {
    ZF_CHECK(!request.guidance, "[flux2] guidance: {} has no guidance input (FLUX.2-dev has)",
             flux2_variant_name(variant_));
    s.guidance = 0.0f;
  }
  ZF_CHECK(s.cfg || !request.negative_prompt || request.negative_prompt->empty(),
           "[flux2] negative_prompt is used only by CFG: set cfg_scale above 1 too ({} runs "
           "without CFG by default)",
           flux2_variant_name(variant_));
  ZF_CHECK(request.batch >= 1, "[flux2] batch must be at least 1, got {}", request.batch);
  s.max_sequence_length =
      request.max_sequence_length.value_or(static_cast<int>(text::kFlux2KleinMaxSequenceLength));
  ZF_CHECK(s.max_sequence_length >= 1 && s.max_sequence_length <= 2048,
           "[flux2] max_sequence_length must be in [1, 2048], got {}", s.max_sequence_length);
  s.schedule = effective_schedule(scheduler_, request.sampling.schedule);
  return s;
}

bool Flux2Pipeline::can_share_forwards(const Flux2Request& a, const Flux2Request& b) const {
  // References condition only their own request's images; img2img runs alone.
  if (!a.references.empty() || !b.references.empty() || a.init_image || b.init_image) return false;
  const auto settings = resolved_shareable(*this, a, b);
  if (!settings) return false;
  const auto& [sa, sb] = *settings;
  return sa.width == sb.width && sa.height == sb.height && sa.steps == sb.steps &&
         sa.cfg_scale == sb.cfg_scale && sa.guidance == sb.guidance &&
         sa.max_sequence_length == sb.max_sequence_length && a.normal_math == b.normal_math &&
         a.vae_tiling == b.vae_tiling && a.sampling == b.sampling &&
         !is_stochastic(a.sampling.sampler);
}

std::vector<io::Image> Flux2Pipeline::generate(const Flux2Request& request,
                                               const RunControl& control) const {
  return std::move(generate_together({&request, 1}, control).front());
}

Tensor Flux2Pipeline::encode_prompt(const std::string& prompt, int max_length,
                                    int64_t copies) const {
  if (variant_ == Flux2Variant::Dev) {
    const text::PromptTokens tokens =
        text::encode_flux2_dev_prompt(tokenizer_, prompt, static_cast<size_t>(max_length));
    const int32_t pad = *tokenizer_.token_to_id("<pad>");  // encode_flux2_dev_prompt checked it
    return repeat_batch(text_encoder_.encode_left_padded(tokens.real_ids(), max_length, pad),
                        copies);
  }
  const text::PromptTokens tokens =
      text::encode_flux2_klein_prompt(tokenizer_, prompt, static_cast<size_t>(max_length));
  const int64_t real = static_cast<int64_t>(tokens.attention_length);
  const Tensor states = text_encoder_.encode_padded({tokens.ids}, {&real, 1});  // [1, L, F]
  return repeat_batch(states, copies);
}

Flux2Pipeline::References Flux2Pipeline::encode_references(const std::vector<io::Image>& images,
                                                           float first_time) const {
  References refs;
  std::vector<Tensor> parts;
  for (size_t n = 0; n < images.size(); ++n) {
    const io::Image image = flux2_reference_image(images[n], scale_factor(), n);
    const Tensor latent = vae_.encode(image_to_tensor(image));  // [1, C, h, w]
    parts.push_back(to_tokens(latent));
    const std::vector<models::Flux2Position> ids = models::flux2_image_ids(
        latent.size(2), latent.size(3), first_time + 10.0f * static_cast<float>(n));
    refs.ids.insert(refs.ids.end(), ids.begin(), ids.end());
  }
  if (!parts.empty()) refs.tokens = parts.size() == 1 ? parts.front() : ops::concat(parts, 1);
  return refs;
}

std::vector<std::vector<io::Image>> Flux2Pipeline::generate_together(
    std::span<const Flux2Request> requests, const RunControl& control) const {
  require_shareable(kFamily, *this, requests);
  const Flux2Settings s = resolve(requests.front());
  int64_t batch = 0;
  for (const Flux2Request& r : requests) batch += r.batch;
  Stopwatch clock;

  // Text: each request's prompt for each of its images; with CFG the negative prompts' after all
  // of them ([B + B, L, F]).
  std::vector<Tensor> parts;
  for (const bool negative : {false, true}) {
    if (negative && !s.cfg) break;
    for (const Flux2Request& r : requests)
      parts.push_back(encode_prompt(negative ? r.negative_prompt.value_or("") : r.prompt,
                                    s.max_sequence_length, r.batch));
  }
  const Tensor txt = parts.size() == 1 ? parts.front() : ops::concat(parts, 0);
  const int64_t samples = s.cfg ? 2 * batch : batch;  // per transformer call
  log::info("[flux2] prompts encoded in {:.2f} s", clock.lap());

  // Noise [B, 128, h, w], request by request from its own seed; the loop runs on these unpacked
  // latents (every update is element-wise) and flattens them to tokens for each call.
  const int64_t rows = s.height / scale_factor(), cols = s.width / scale_factor();
  FlowSchedule schedule =
      respace(flux2_klein_schedule(scheduler_, s.steps, rows * cols), s.schedule);
  std::vector<Tensor> noise;
  for (const Flux2Request& r : requests) {
    Generator generator(r.seed, r.normal_math);
    noise.push_back(varied_noise(generator.randn({r.batch, vae_.latent_channels(), rows, cols}),
                                 r.variation, r.normal_math));
  }
  Tensor latents = noise.size() == 1 ? noise.front() : ops::concat(noise, 0);

  // Reference tokens follow the image's in every forward (a lone request's: joint runs take
  // none); the prediction keeps the image's. An init image (a lone request's too) is the first.
  const Flux2Request& first = requests.front();
  References refs;
  std::optional<FlowInpaint> inpaint;
  if (first.init_image) {
    const io::Image init = flux2_init_image(*first.init_image, scale_factor());
    const Tensor encoded = vae_.encode(image_to_tensor(init));  // [1, C, rows, cols]
    refs.tokens = to_tokens(encoded);
    refs.ids = models::flux2_image_ids(rows, cols, 10.0f);
    const Tensor image_latents = repeat_batch(encoded, batch);
    schedule = schedule.starting_at(img2img_start(s.steps, s.strength));
    const Tensor noise_all = latents;
    Tensor start = image_latents;
    if (first.mask) {
      inpaint = FlowInpaint{
          preprocess_mask_bilinear(fit_image(*first.mask, s.width, s.height), rows, cols),
          image_latents, noise_all};
      start = latents_with_masked_content(image_latents, noise_all, inpaint->mask,
                                          first.masked_content);
    }
    latents = scale_noise(start, noise_all, schedule.sigmas.front());
  }
  {
    References others = encode_references(first.references, first.init_image ? 20.0f : 10.0f);
    if (others.tokens.defined()) {
      refs.tokens =
          refs.tokens.defined() ? ops::concat({refs.tokens, others.tokens}, 1) : others.tokens;
      refs.ids.insert(refs.ids.end(), others.ids.begin(), others.ids.end());
    }
  }
  const Tensor ref_tokens = refs.tokens.defined() ? repeat_batch(refs.tokens, samples) : Tensor{};
  // dev's embedded guidance, the same for every sample; klein has no guidance input.
  const std::vector<float> guidance(variant_ == Flux2Variant::Dev ? samples : 0, s.guidance);
  // klein KV runs its references once, at time 0; the others join every forward with them.
  std::optional<models::Flux2ReferenceCache> cache;
  if (ref_tokens.defined() && variant_ == Flux2Variant::KleinKv)
    cache = transformer_.reference_cache(ref_tokens, refs.ids, 0.0f, guidance);
  const bool joined = ref_tokens.defined() && !cache;
  std::vector<models::Flux2Position> ids = models::flux2_image_ids(rows, cols);
  if (joined) ids.insert(ids.end(), refs.ids.begin(), refs.ids.end());
  if (!refs.ids.empty())
    log::info("[flux2] {} reference tokens encoded{} in {:.2f} s", refs.ids.size(),
              cache ? ", their keys and values cached" : "", clock.lap());
  const FlowVelocity velocity = [&](const Tensor& x, int i) {
    const std::vector<float> t(static_cast<size_t>(samples),
                               flux_model_time(schedule.timesteps[static_cast<size_t>(i)]));
    Tensor tokens = to_tokens(s.cfg ? repeat_batch(x, 2) : x);
    if (joined) tokens = ops::concat({tokens, ref_tokens}, 1);
    const Tensor out =
        transformer_.forward(tokens, ids, txt, t, guidance, cache ? &*cache : nullptr)
            .slice(1, 0, rows * cols);
    const Tensor v = from_tokens(out, rows, cols);
    return s.cfg ? combine_guidance(v, s.cfg_scale) : v;
  };
  const RunControl run = with_previews(control, [this](const Tensor& z) { return vae_.decode(z); });
  latents = flow_denoise(
      velocity, latents, schedule, inpaint ? &*inpaint : nullptr, run,
      requests.front().sampling.sampler,
      sampler_noise(requests.front().seed, requests.front().normal_math, latents.shape()));
  const double denoise_seconds = clock.lap();
  log::info("[flux2] {} steps in {:.2f} s ({:.2f} s/step)", schedule.steps(), denoise_seconds,
            denoise_seconds / schedule.steps());
  const Tensor image = vae_.decode(latents, requests.front().vae_tiling);
  log::info("[flux2] decoded in {:.2f} s", clock.lap());
  return split_by_request(tensor_to_images(image), requests);
}

}  // namespace zflow::pipeline
