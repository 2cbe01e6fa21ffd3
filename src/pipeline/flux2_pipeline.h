// The FLUX.2 pipelines: klein (the 4-step distilled models and their undistilled bases) and
// dev, text-to-image and editing with reference images, equal to diffusers 0.42.1's
// Flux2KleinPipeline and Flux2Pipeline (facts: flux.md §1.4, §3.3, §3.4, §4.2, §5.3, §5.4).
//
//   klein: prompt -> Qwen3 chat template, thinking off (text/chat_template.h), 512 ids padded
//     with <|endoftext|> -> Qwen3 hidden states 9, 18 and 27 of every id, padding included,
//     stacked on the features                                  [B, 512, 3 x hidden]
//   dev: prompt -> BFL's system message and Mistral's template, 512 ids padded with <pad> on the
//     left -> Mistral-Small hidden states 10, 20 and 30 of every id, the same way
//                                                              [B, 512, 3 x 5120]
//   noise = randn([B, 128, H/16, W/16], torch CPU generator(seed)): the autoencoder's 32 channels
//     patchified 2x2, flattened to tokens for the transformer (text at (0, 0, 0, k), image at
//     (0, i, j, 0))
//   schedule: sigmas linspace(1, 1/N, N) shifted by the empirical mu of the token count and N
//     (use_dynamic_shifting, as klein's scheduler_config.json sets it), or the config's static
//     shift when it turns dynamic shifting off
//   each step one batched transformer forward and the Euler update; dev feeds its embedded
//     guidance (4 by default), klein has no guidance input, and the undistilled klein base runs
//     CFG against the empty prompt (or a negative prompt): v = neg + g (pos - neg), both halves
//     in one forward
//   klein inpainting and img2img (diffusers' Flux2KleinInpaintPipeline): the init image prepared
//     as flux2_references.h says (its size is the output's) and encoded; the schedule cut by
//     `strength` (default 0.8); the start scale_noise(image, noise, sigma_start); the image's
//     tokens also join every forward as the first reference (t = 10, the others after it); after
//     each step the latents outside the mask (taken to the token grid bilinearly) are replaced by
//     the image noised to the next sigma. Without a mask every token is repainted (img2img).
//   reference images (editing): each prepared as flux2_references.h says, encoded to its
//     normalised latent (the posterior mean), flattened to tokens at (10 + 10 n, i, j, 0) for the
//     n-th, and appended after the image tokens of every forward; the prediction keeps the image
//     tokens. The output size defaults to the first reference's.
//   klein KV (Flux2KleinKVPipeline; FLUX.2-klein-9b-kv): its reference tokens attend only to
//     each other and are modulated at time 0, so they run once, before the first step; every
//     step's attention then reads their cached keys and values (models/flux2_dit.h). No init
//     image (diffusers has no KV inpainting pipeline).
//   the autoencoder's BatchNorm denormalisation, unpatchify and decode; uint8 as
//     VaeImageProcessor.
// The batch of N images is one batched forward per step over one noise tensor [N, ...], as
// diffusers' num_images_per_prompt does it. Everything runs in float32 on the CPU; the models
// run where the placement says.
// Not yet: dev's img2img and inpaint (diffusers has no such pipeline for it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/image.h"
#include "models/flux2_autoencoder.h"
#include "models/flux2_dit.h"
#include "models/qwen3.h"
#include "pipeline/masked_content.h"
#include "pipeline/run_control.h"
#include "pipeline/scheduler_config.h"
#include "pipeline/variation_seed.h"
#include "sampling/flow_sampler.h"
#include "text/bpe_tokenizer.h"

namespace zflow::pipeline {

enum class Flux2Variant {
  Klein,      // step-distilled: 4 steps, no CFG
  KleinKv,    // klein 9B KV: as Klein, its reference tokens computed once (models/flux2_dit.h)
  KleinBase,  // undistilled: 50 steps, CFG 4
  Dev,        // guidance-distilled: 50 steps, embedded guidance 4, no CFG
};
// "FLUX.2-klein", "FLUX.2-klein-kv", "FLUX.2-klein-base", "FLUX.2-dev"
const char* flux2_variant_name(Flux2Variant variant);

struct Flux2Defaults {
  int steps;
  float cfg_scale;  // 1: none
  float guidance;   // the embedded guidance (dev); 0: the model has no guidance input
};
Flux2Defaults flux2_defaults(Flux2Variant variant);

// Where the components are: a diffusers folder (model_index.json, transformer/, text_encoder/,
// tokenizer/, vae/, scheduler/) in model_dir, or each on its own (a ComfyUI diffusion model,
// qwen_3_4b.safetensors, the FLUX.2 VAE); a component given on its own overrides the folder's.
struct Flux2Files {
  std::filesystem::path model_dir;
  std::filesystem::path diffusion_model;
  // Qwen3-4B (klein 4B), Qwen3-8B (klein 9B) or Mistral-Small-3.2 (dev)
  std::filesystem::path text_encoder;
  std::filesystem::path tokenizer;  // tokenizer.json (tokenizer/); Mistral's: or vocab + merges
  std::filesystem::path vae;
  io::LoadQuantization quantize = {};   // the transformer's block linears quantised at load
  std::vector<models::LoraFile> loras;  // merged into the transformer at load (models/lora.h)
};

struct Flux2Request {
  std::string prompt;
  std::optional<std::string> negative_prompt;  // CFG's; default "" as diffusers' klein uses
  std::optional<int> width;                    // default: the first reference's, else 1024
  std::optional<int> height;
  std::optional<int> steps;        // default: the variant's
  std::optional<float> cfg_scale;  // default: the variant's; above 1 runs CFG (klein base)
  std::optional<float> guidance;   // default: the variant's; dev's embedded guidance
  uint64_t seed = 0;
  // A1111's variation seed (pipeline/variation_seed.h): the start noise bent towards another
  // seed's.
  std::optional<VariationSeed> variation;
  int batch = 1;
  std::optional<int> max_sequence_length;           // text ids per prompt, template included; 512
  NormalMath normal_math = NormalMath::Avx2Cephes;  // which torch CPU kernel's randn to match
  bool vae_tiling = false;                          // decode in tiles (models/vae_tiling.h)
  std::vector<io::Image> references;    // images to edit or draw from (klein's multi-reference)
  std::optional<io::Image> init_image;  // klein: img2img, or inpaint with a mask
  std::optional<io::Image> mask;        // white: repaint; any size (Lanczos to the init's)
  // What the masked area's latents start from (A1111's latent masked content modes; the pixel
  // fill happens before, pipeline/mask_crop.h).
  MaskedContent masked_content = MaskedContent::Original;
  std::optional<double> strength;  // how much of the schedule runs from the init image; 0.8
  SamplingChoice sampling;         // default: Euler on the scheduler's schedule, as diffusers
};

enum class Flux2Mode { TextToImage, ImageToImage, Inpaint };
const char* flux2_mode_name(Flux2Mode mode);  // "txt2img", "img2img", "inpaint"

// A request with every default filled in: what actually runs, and what metadata records.
struct Flux2Settings {
  Flux2Mode mode;
  double strength;  // 1 for text-to-image
  int width, height;
  int steps;
  float cfg_scale;         // 1: none
  bool cfg;                // a second half of the batch runs on the negative prompt
  float guidance;          // the embedded guidance; 0 for klein (no guidance input)
  SigmaSchedule schedule;  // the request's, or for "simple" the scheduler config's respacing
  int max_sequence_length;
};

class Flux2Pipeline {
 public:
  // Loads every component; a missing or mismatched one gives an Error naming it and what was
  // expected. Dev or klein: the transformer's guidance embedder (and model_index.json's class,
  // which must agree). Klein or its base: model_index.json's is_distilled, else the name (a
  // folder or file named "...base..." is the base, as the releases are named). Klein KV:
  // model_index.json's Flux2KleinKVPipeline, else a name with "-kv" or "_kv".
  static Flux2Pipeline load(const Flux2Files& files, const models::Placement& placement = {});

  Flux2Variant variant() const { return variant_; }
  const Flux2Defaults& defaults() const { return defaults_; }
  const std::string& model_name() const { return model_name_; }
  const models::Flux2Transformer& transformer() const { return transformer_; }
  int64_t scale_factor() const { return vae_.scale_factor(); }  // pixels per latent token side

  // Checks the request (sizes, steps, batch, CFG scale, text length, reference images, inputs
  // klein does not take) and fills in defaults.
  Flux2Settings resolve(const Flux2Request& request) const;

  // request.batch images. Throws Cancelled when control.stop is requested between steps.
  std::vector<io::Image> generate(const Flux2Request& request,
                                  const RunControl& control = {}) const;

  // Whether a and b can run in the same batched forwards: both valid text-to-image requests (no
  // reference images) and equal in every setting but the prompts, seeds and batch sizes.
  bool can_share_forwards(const Flux2Request& a, const Flux2Request& b) const;
  // Several requests in one batched run, each getting the images generate() makes for it alone.
  std::vector<std::vector<io::Image>> generate_together(std::span<const Flux2Request> requests,
                                                        const RunControl& control = {}) const;

 private:
  Flux2Pipeline(text::BpeTokenizer tokenizer, models::Qwen3TextEncoder text_encoder,
                models::Flux2Transformer transformer, models::Flux2Autoencoder vae,
                Flux2Variant variant);

  // [copies, L, features]: the prompt's text states, once per image.
  Tensor encode_prompt(const std::string& prompt, int max_length, int64_t copies) const;
  // The references' latent tokens [1, N, channels] and their positions.
  struct References {
    Tensor tokens;
    std::vector<models::Flux2Position> ids;
  };
  // `first_time` is the first reference's t coordinate, the others 10 apart.
  References encode_references(const std::vector<io::Image>& images,
                               float first_time = 10.0f) const;

  text::BpeTokenizer tokenizer_;
  models::Qwen3TextEncoder text_encoder_;
  models::Flux2Transformer transformer_;
  models::Flux2Autoencoder vae_;
  Flux2Variant variant_ = Flux2Variant::Klein;
  Flux2Defaults defaults_{};
  SchedulerConfig scheduler_{};
  std::string model_name_;
};

}  // namespace zflow::pipeline
