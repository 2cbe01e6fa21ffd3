// The FLUX.1 pipeline (dev and schnell): text-to-image, img2img and inpaint, equal to diffusers
// 0.42.1's FluxPipeline, FluxImg2ImgPipeline and FluxInpaintPipeline (facts: flux.md §1.2, §3,
// §5); and FLUX.1 Fill (its transformer known by its input width), equal to FluxFillPipeline:
// an init image and mask are required, and they condition every forward (flux_fill.h) instead of
// being blended back after each step. A reference image edits as FLUX.1 Kontext,
// FluxKontextPipeline: the picture joins every forward as further tokens (flux_kontext.h). FLUX.1
// Canny-dev and Depth-dev (known by their transformer's input width) draw from a control image,
// equal to FluxControlPipeline: its latents join each token's features (flux_control.h). With
// a Redux image embedder loaded, a reference image makes variations as FluxPriorReduxPipeline
// feeds FluxPipeline: SigLIP's view of it, embedded as T5-wide tokens, follows the prompt's T5
// states (flux_redux.h). With a ControlNet loaded (InstantX, Shakker-Labs, XLabs), a control image
// steers text-to-image, img2img and inpaint as FluxControlNetPipeline and its img2img / inpaint
// variants: each step the ControlNet's samples join the transformer's blocks
// (flux_controlnet_input.h).
//
//   prompt   -> CLIP-L tokens (77, padded) -> pooler_output             [B, 768]
//   prompt_2 -> T5 tokens (max_sequence_length, padded) -> last hidden state  [B, L, 4096]
//                (prompt_2 defaults to prompt)
//   noise = randn([B, 16, 2*(H/16), 2*(W/16)], torch CPU generator(seed)), packed 2x2 for the
//   transformer; img2img / inpaint start from the init image as start_latents.h says
//   schedule: flux_scheduler.h, from the folder's scheduler_config.json or the release's (dev:
//     dynamic shift by image tokens, schnell: none); img2img and inpaint start at
//     img2img_start(steps, strength) = int(N - N * strength)
//   each step one batched transformer forward (embedded guidance for dev, none for schnell), the
//   Euler update, and for inpaint the blend with the re-noised init latents (flow_denoise.h)
//   true CFG (diffusers' true_cfg_scale s > 1 with a negative prompt): the negative prompt is
//     encoded like the prompt, the forward runs on [positives; negatives] (2B samples, one call),
//     and the velocity is neg + s * (pos - neg)
//   VAE decode of z / 0.3611 + 0.1159 (the VAE config's factors), uint8 as VaeImageProcessor.
// The batch of N images is one batched forward per step over one noise tensor [N, ...], as
// diffusers' num_images_per_prompt does it (so image k of a batch is not the image of seed + k).
//
// Init images and masks of any size are Lanczos-resized to the output size exactly as Pillow does
// (diffusers' image processor). Differences from diffusers, by design: the size defaults to the
// init image's rounded down to multiples of 16 (diffusers: 1024 x 1024); settings diffusers
// would silently ignore are refused (a negative prompt without true_cfg_scale > 1, and the
// reverse). Everything runs in float32.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "models/clip_text.h"
#include "models/flux_controlnet.h"
#include "models/flux_dit.h"
#include "models/flux_redux.h"
#include "models/siglip_vision.h"
#include "models/t5_encoder.h"
#include "pipeline/control_input.h"
#include "pipeline/latent_space.h"
#include "pipeline/masked_content.h"
#include "pipeline/run_control.h"
#include "pipeline/scheduler_config.h"
#include "pipeline/variation_seed.h"
#include "sampling/flow_sampler.h"
#include "text/clip_tokenizer.h"
#include "text/t5_tokenizer.h"

namespace zflow::pipeline {

// Kontext has dev's architecture: a folder's FluxKontextPipeline, or a transformer file named
// "...kontext...", names it.
// Canny-dev and Depth-dev have one shape (ControlDev): only the control image differs.
enum class FluxVariant { Dev, Schnell, FillDev, KontextDev, ControlDev };
// "FLUX.1-dev" / "FLUX.1-schnell" / "FLUX.1-Fill-dev" / "FLUX.1-Kontext-dev" /
// "FLUX.1-Canny/Depth-dev"
const char* flux_variant_name(FluxVariant variant);

// What a variant runs with unless told otherwise (diffusers' FluxPipeline defaults and the
// model cards: dev 28 steps with embedded guidance 3.5 for text-to-image and 7.0 for img2img and
// inpaint, T5 length 512; schnell 4 steps, no guidance, T5 length 256; Fill (FluxFillPipeline)
// 50 steps with guidance 30, T5 length 512; Canny / Depth (FluxControlPipeline,
// FluxControlImg2ImgPipeline, FluxControlInpaintPipeline) dev's, where BFL's cards use 50 steps at
// guidance 30 for Canny and 30 at 10 for Depth: one set of weights cannot tell which it is).
struct FluxDefaults {
  int steps;
  float guidance;          // text-to-image; 0 for schnell (it has no guidance input)
  float guidance_img2img;  // img2img and inpaint
  int max_sequence_length;
};
FluxDefaults flux_defaults(FluxVariant variant);

// Where the components are. A diffusers folder (model_index.json with transformer/,
// text_encoder/ (CLIP-L), text_encoder_2/ (T5), vae/, tokenizer/, tokenizer_2/) in model_dir, or
// each on its own (a ComfyUI diffusion model, clip_l.safetensors, t5xxl_*.safetensors, ae.
// safetensors); a component given on its own overrides the folder's.
struct FluxFiles {
  std::filesystem::path model_dir;
  std::filesystem::path diffusion_model;
  std::filesystem::path clip;  // CLIP-L text encoder (text_encoder/)
  std::filesystem::path t5;    // T5-XXL encoder (text_encoder_2/)
  std::filesystem::path vae;
  std::filesystem::path clip_tokenizer;  // vocab.json + merges.txt (tokenizer/)
  std::filesystem::path t5_tokenizer;    // spiece.model (tokenizer_2/)
  // FLUX.1 Redux: a diffusers FLUX.1-Redux-dev folder (image_encoder/, image_embedder/) or
  // flux1-redux-dev.safetensors; siglip: the SigLIP vision tower (a file or folder; default the
  // Redux folder's image_encoder/).
  std::filesystem::path redux;
  std::filesystem::path siglip;
  // FLUX.1 ControlNets (models/flux_controlnet.h): diffusers folders or files; default the model
  // folder's controlnet/ when its model_index.json names a FluxControlNet pipeline. Several run
  // side by side, control image k read by ControlNet k (diffusers' FluxMultiControlNetModel).
  std::vector<std::filesystem::path> controlnets;
  io::LoadQuantization quantize = {};   // the transformer's block linears quantised at load
  std::vector<models::LoraFile> loras;  // merged into the transformer at load (models/lora.h)
};

struct FluxRequest {
  std::string prompt;                   // CLIP's prompt, and T5's unless prompt_2 is set
  std::optional<std::string> prompt_2;  // T5's prompt (diffusers prompt_2)
  std::optional<int> width;             // default 1024, or the init image's width
  std::optional<int> height;
  std::optional<int> steps;       // default: the variant's
  std::optional<float> guidance;  // embedded guidance (dev); schnell ignores it
  // True CFG: a scale above 1 needs negative_prompt, and a negative prompt needs such a scale.
  // negative_prompt goes to CLIP, and to T5 unless negative_prompt_2 is set; "" is a prompt.
  std::optional<float> true_cfg_scale;  // default 1: off
  std::optional<std::string> negative_prompt;
  std::optional<std::string> negative_prompt_2;
  uint64_t seed = 0;
  // A1111's variation seed (pipeline/variation_seed.h): the start noise bent towards another
  // seed's.
  std::optional<VariationSeed> variation;
  int batch = 1;
  std::optional<io::Image> init_image;  // img2img (or inpaint with mask)
  std::optional<io::Image> mask;        // inpaint: white = repaint; needs init_image
  // What the masked area's latents start from (A1111's latent masked content modes; the pixel
  // fill happens before, pipeline/mask_crop.h).
  MaskedContent masked_content = MaskedContent::Original;
  // Or img2img from latents (a latent upscaler's, pipeline/latent_upscale.h): the model's own
  // normalised latents [1, C, h, w], whose grid sets the size; not with an init image.
  std::optional<Tensor> init_latents;
  std::optional<double> strength;  // default 0.6 (img2img and inpaint), Fill 1
  // Kontext: the one picture to edit; without a size the output takes its Kontext resolution (by
  // design: diffusers makes 1024 x 1024 unless told). Not with an init image, except to inpaint.
  // With Redux loaded: the pictures to make variations of, their tokens one after another (as
  // ComfyUI's chained StyleModelApply nodes), each times redux_strength (default 1; ComfyUI's
  // "multiply" strength).
  std::vector<io::Image> references;
  std::optional<float> redux_strength;
  // Canny-dev / Depth-dev: one, the edge or depth map to draw from (from noise, or img2img and
  // inpaint with init_image), without settings. With a ControlNet: its inputs, one or several
  // (diffusers' FluxMultiControlNetModel around one ControlNet: their samples add up), each with
  // its weight (default 1, controlnet_conditioning_scale), the part of the schedule it acts on
  // (steps i of N with start <= i / N and (i + 1) / N <= end: control_guidance_start / end,
  // default 0 and 1) and, for a Union ControlNet, its mode (required there, refused elsewhere).
  // The first sets the output's default size when there is no init image.
  std::vector<ControlInput> controls;
  std::optional<int> max_sequence_length;  // T5 tokens; default 512 dev / 256 schnell
  // A fixed shift of the sigmas instead of the scheduler config's schedule: the schedule of a
  // scheduler with use_dynamic_shifting false and this shift (sd.cpp's --flow-shift).
  std::optional<double> shift;
  SamplingChoice sampling;  // default: Euler on the scheduler's schedule, as diffusers
  // A threshold (models/first_block_cache.h); the cond and uncond passes of true CFG keep their
  // own state, as diffusers' cache_context("cond") / ("uncond").
  std::optional<float> first_block_cache;
  NormalMath normal_math = NormalMath::Avx2Cephes;  // which torch CPU kernel's randn to match
  bool vae_tiling = false;  // encode and decode in 1024-pixel tiles (diffusers' enable_tiling())
};

enum class FluxMode { TextToImage, ImageToImage, Inpaint, Edit, Control };
// "txt2img", "img2img", "inpaint", "edit", "control"
const char* flux_mode_name(FluxMode mode);
// Whether the run starts part way down the schedule from the init image (img2img and inpaint),
// so that a strength applies.
inline bool starts_from_image(FluxMode mode) {
  return mode == FluxMode::ImageToImage || mode == FluxMode::Inpaint;
}

// A request with every default filled in: what actually runs, and what metadata records.
struct FluxSettings {
  FluxMode mode;
  int width, height;
  int steps;             // the full schedule's length; img2img runs steps - start of them
  float guidance;        // the embedded guidance; for schnell 0 (unused), or its ControlNet's
  float true_cfg_scale;  // 1: off
  bool true_cfg;         // a second pass on the negative prompt runs
  double strength;       // 1 for text-to-image
  int max_sequence_length;
  std::optional<double> shift;  // a fixed shift in place of the scheduler config's schedule
  SigmaSchedule schedule;       // the request's, or for "simple" the scheduler config's respacing
  bool redux;                   // the reference images' Redux tokens follow the T5 states
  float redux_strength;         // their weight
  // Kontext inpainting (mode Inpaint): the init image's latents (its posterior mode), or the
  // reference's, follow the noisy tokens in every forward.
  bool kontext_inpaint;
  // ControlNet (controlnet true): each control's settings, filled in, and the ControlNet that
  // reads it.
  bool controlnet;
  struct Control {
    float scale;
    double start, end;
    std::optional<int> mode;
    size_t net;
  };
  std::vector<Control> controls;
};

class FluxPipeline {
 public:
  // Loads every component; a missing or mismatched one gives an Error naming it and what was
  // expected. dev or schnell: the transformer's guidance embedder decides; Fill: its input width
  // (flux_fill_in_channels), Canny / Depth likewise (flux_control_in_channels); Kontext: the
  // folder's pipeline class or the transformer file's name. The text encoders, transformer and
  // VAE run where `placement` says (models/placement.h); tokens, latents and the schedule math
  // stay float32 on the CPU.
  static FluxPipeline load(const FluxFiles& files, const models::Placement& placement = {});

  FluxVariant variant() const { return variant_; }
  const FluxDefaults& defaults() const { return defaults_; }
  const std::string& model_name() const { return model_name_; }  // folder or file stem
  const models::FluxTransformer& transformer() const { return transformer_; }
  // The ControlNets loaded (none, one, or several side by side), and their file stems.
  const std::vector<std::shared_ptr<const models::FluxControlNet>>& controlnets() const {
    return controlnets_;
  }
  const std::vector<std::string>& controlnet_names() const { return controlnet_names_; }
  // The folder's scheduler/scheduler_config.json, else the release's for the variant.
  const SchedulerConfig& scheduler() const { return scheduler_; }
  // Pixels per latent cell (8 for the release VAE); image sides must be multiples of twice this.
  int64_t vae_scale_factor() const;

  // Checks the request (sizes, strength, batch, T5 length, mask without image, true CFG scale and
  // negative prompt) and fills in defaults.
  FluxSettings resolve(const FluxRequest& request) const;

  // request.batch images. Throws Cancelled when control.stop is requested between steps.
  std::vector<io::Image> generate(const FluxRequest& request, const RunControl& control = {}) const;

  // Whether a and b can run in the same batched forwards (generate_together): both
  // text-to-image (no reference either), valid, and equal in every setting but the prompts,
  // seeds and batch sizes.
  bool can_share_forwards(const FluxRequest& a, const FluxRequest& b) const;
  // Several requests in one batched run: each request's images, in order, as generate() makes
  // them alone (its noise from its own seed, its samples conditioned on its own prompts). More
  // than one request must pass can_share_forwards with the first.
  std::vector<std::vector<io::Image>> generate_together(std::span<const FluxRequest> requests,
                                                        const RunControl& control = {}) const;

  // The grid of generate_latents and of a request's init_latents: the autoencoder's.
  LatentSpace latent_space() const { return latent_space_of(vae_); }

  // The requests' images' final latents, undecoded, in order: [1, C, h, w] each, the normalised
  // latent grid (what a latent upscaler resizes for the hires fix's second pass, init_latents).
  // The requests share forwards as in generate_together.
  std::vector<Tensor> generate_latents_together(std::span<const FluxRequest> requests,
                                                const RunControl& control = {}) const;

 private:
  // Everything but the decode: the requests' latents [summed batch, C, h, w].
  Tensor denoise_together(std::span<const FluxRequest> requests, const RunControl& control) const;
  FluxPipeline(text::ClipTokenizer clip_tokenizer, text::T5Tokenizer t5_tokenizer,
               models::ClipTextModel clip, models::T5Encoder t5,
               models::FluxTransformer transformer, models::AutoencoderKL vae);
  void load_redux(const FluxFiles& files, const models::Placement& placement);
  void load_controlnets(std::span<const std::filesystem::path> paths,
                        const models::Placement& placement);
  void resolve_controlnet(const FluxRequest& request, FluxSettings& s) const;
  // The Redux tokens of an image [(S/p)^2, T].
  Tensor redux_tokens(const io::Image& image) const;

  text::ClipTokenizer clip_tokenizer_;
  text::T5Tokenizer t5_tokenizer_;
  models::ClipTextModel clip_;
  models::T5Encoder t5_;
  models::FluxTransformer transformer_;
  models::AutoencoderKL vae_;
  std::shared_ptr<const models::SiglipVisionModel> siglip_;  // both set when Redux is loaded
  std::shared_ptr<const models::ReduxImageEncoder> redux_;
  std::vector<std::shared_ptr<const models::FluxControlNet>> controlnets_;
  std::vector<std::string> controlnet_names_;
  FluxVariant variant_ = FluxVariant::Dev;
  FluxDefaults defaults_{};
  SchedulerConfig scheduler_{};
  std::string model_name_;
};

}  // namespace zflow::pipeline
