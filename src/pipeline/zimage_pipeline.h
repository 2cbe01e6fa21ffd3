// The Z-Image pipeline: text-to-image, img2img and inpaint, equal to diffusers 0.42.1's
// ZImagePipeline, ZImageImg2ImgPipeline and ZImageInpaintPipeline (facts: zimage.md §3.3, §5).
//
//   prompt -> chat template -> Qwen3 hidden_states[-2] (real tokens)      (negative too when g > 0)
//   noise = randn([B, 16, 2*(H/16), 2*(W/16)], torch CPU generator(seed))        (text-to-image)
//   img2img / inpaint: z_img = normalize(posterior sample(VAE.encode(image), generator)) FIRST,
//     then noise = randn(...) from the same generator, start = sigma_s * noise + (1 - sigma_s) *
//     z_img with s = img2img_start(steps, strength); inpaint also blends every step
//     (zimage_sampler.h)
//   zimage_denoise (CFG batched with the negatives), VAE decode, uint8 as VaeImageProcessor.
// The batch of N images is one batched forward per step: N copies of the prompt, drawn from one
// noise tensor [N, ...], as diffusers' num_images_per_prompt does it (so image k of a batch is
// not the image of seed + k).
//
// Init images and masks of any size are Lanczos-resized to the output size exactly as Pillow does
// (diffusers' image processor); without a size, the output takes the init image's, rounded down
// to multiples of 16. Differences from diffusers, by design: a requested size other than the init
// image's resizes the image (diffusers fails on the shape mismatch), and everything runs in
// float32 (a bf16 diffusers run draws the img2img noise in bf16 because it follows the text
// encoder's dtype).
//
// With a ControlNet (models/zimage_controlnet.h) and a control image, every forward also gets
// the control input (zimage_control.h) as diffusers' ZImageControlNetPipeline gives it; with an
// init image and a mask too, a 2.x ControlNet inpaints as ZImageControlNetInpaintPipeline does:
// from pure noise, the masked image entering only through the control input. A control image
// also works with plain img2img (diffusers has no such pipeline; the control input is the same).
// Without a size, the output takes the init image's, else the control image's (diffusers'
// ControlNet pipelines default to 1024 whatever their docstring says).
//
// An Omni model (its transformer has siglip_feat_dim; diffusers' ZImageOmniPipeline) takes
// condition images (`references`: a picture to edit, or several to combine) and runs as that
// pipeline does: the prompt in segments around the images (text/chat_template.h), the images
// prepared by zimage_omni.h, every forward over [conditions ; target] (forward_omni). Without
// references it generates from text in Omni's own layout. It has no img2img, inpaint or
// ControlNet.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/image.h"
#include "models/autoencoder_kl.h"
#include "models/qwen3.h"
#include "models/siglip2_vision.h"
#include "models/zimage_controlnet.h"
#include "models/zimage_dit.h"
#include "pipeline/latent_space.h"
#include "pipeline/masked_content.h"
#include "pipeline/run_control.h"
#include "pipeline/scheduler_config.h"
#include "pipeline/variation_seed.h"
#include "sampling/flow_sampler.h"
#include "text/bpe_tokenizer.h"

namespace zflow::pipeline {

enum class ZImageVariant { Turbo, Base };

// What a variant runs with unless told otherwise (Turbo: model card and diffusers docs, 8 steps
// without CFG; Base: model card example, 50 steps with g = 4; shifts from scheduler_config.json).
struct ZImageDefaults {
  int steps;
  float guidance;  // Z-Image's g (CFG scale w = 1 + g)
  double shift;
};
ZImageDefaults zimage_defaults(ZImageVariant variant);
const char* zimage_variant_name(ZImageVariant variant);  // "Z-Image-Turbo" / "Z-Image"

// Where the components are. A diffusers folder (model_index.json with transformer/,
// text_encoder/, vae/, tokenizer/, scheduler/) in model_dir, or each file on its own; a file given
// on its own overrides the folder's component (e.g. the tokenizer for a folder saved without one).
struct ZImageFiles {
  std::filesystem::path model_dir;
  std::filesystem::path diffusion_model;
  std::filesystem::path text_encoder;
  std::filesystem::path vae;
  std::filesystem::path tokenizer;
  io::LoadQuantization quantize = {};   // the transformer's block linears quantised at load
  std::vector<models::LoraFile> loras;  // merged into the transformer at load (models/lora.h)
  std::filesystem::path controlnet;     // a Z-Image ControlNet file or folder, when wanted
  std::filesystem::path siglip;         // Omni: its SigLIP 2 tower, when not model_dir's siglip/
};

struct ZImageRequest {
  std::string prompt;
  std::string negative_prompt;  // used only when g > 0; "" as in diffusers when unset
  std::optional<int> width;     // default 1024, or the init image's width
  std::optional<int> height;
  std::optional<int> steps;                // default: the variant's
  std::optional<float> guidance;           // g; default: the variant's
  float cfg_normalization = 0.0f;          // k > 0 caps ||pred|| at k ||pos|| (diffusers True = 1)
  double cfg_truncation = 1.0;             // steps with 1 - sigma > c run without CFG
  std::optional<double> shift;             // default: the scheduler config's, else the variant's
  SamplingChoice sampling;                 // default: Euler on the shifted schedule, as diffusers
  std::optional<float> first_block_cache;  // a threshold: models/first_block_cache.h
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
  std::optional<double> strength;                   // default 0.6 for img2img, 1.0 for inpaint
  size_t max_sequence_length = 512;                 // tokens per prompt including the chat template
  NormalMath normal_math = NormalMath::Avx2Cephes;  // which torch CPU kernel's randn to match
  bool vae_tiling = false;  // encode and decode in 1024-pixel tiles (diffusers' enable_tiling())
  std::optional<io::Image> control_image;  // needs a ControlNet: edges, depth, pose, ...
  float control_scale = 0.75f;             // every hint's weight (diffusers' default)
  std::vector<io::Image> references;       // Omni: condition images, to edit or combine
};

// ControlInpaint: init image, mask and control image with a 2.x ControlNet (see above); Omni: an
// Omni model's run, with or without condition images.
enum class ZImageMode { TextToImage, ImageToImage, Inpaint, ControlInpaint, Omni };
// "txt2img", "img2img", "inpaint", "controlnet-inpaint", "omni"
const char* zimage_mode_name(ZImageMode mode);
// Whether the run starts part way down the schedule from the init image (img2img and inpaint; a
// ControlNet inpaint starts from noise), so that a strength applies.
inline bool starts_from_image(ZImageMode mode) {
  return mode == ZImageMode::ImageToImage || mode == ZImageMode::Inpaint;
}

// A request with every default filled in: what actually runs, and what metadata records.
struct ZImageSettings {
  ZImageMode mode;
  int width, height;
  int steps;  // the full schedule's length; img2img runs steps - start of them
  float guidance;
  double shift;
  SigmaSchedule schedule;  // the request's, or for "simple" the scheduler config's respacing
  double strength;         // 1 for text-to-image and ControlNet inpainting
  bool controlled;         // a control image steers the run
};

class ZImagePipeline {
 public:
  // Loads every component; a missing or mismatched one gives an Error naming it and what was
  // expected. The text encoder, transformer and VAE run where `placement` says
  // (models/placement.h); tokens, latents and the schedule math stay float32 on the CPU.
  static ZImagePipeline load(const ZImageFiles& files, const models::Placement& placement = {});
  // A pipeline of components already made, with the variant's defaults (what load ends with;
  // `zflow bench pipeline` builds random-weight models this way). They must fit together.
  static ZImagePipeline assemble(text::BpeTokenizer tokenizer,
                                 models::Qwen3TextEncoder text_encoder,
                                 models::ZImageTransformer transformer, models::AutoencoderKL vae,
                                 ZImageVariant variant, std::string model_name);

  ZImageVariant variant() const { return variant_; }
  const ZImageDefaults& defaults() const { return defaults_; }
  const std::string& model_name() const { return model_name_; }  // folder or file stem
  const models::ZImageControlNet* controlnet() const {
    return controlnet_ ? &*controlnet_ : nullptr;
  }
  const std::string& controlnet_name() const { return controlnet_name_; }  // its file stem
  // An Omni model: takes condition images (ZImageRequest::references).
  bool omni() const { return transformer_.config().siglip_feat_dim > 0; }
  // Pixels per latent cell (8 for the release VAE); image sides must be multiples of twice this.
  int64_t vae_scale_factor() const;

  // Checks the request (sizes, strength, batch, mask without image) and fills in defaults.
  ZImageSettings resolve(const ZImageRequest& request) const;

  // request.batch images. Throws Cancelled when control.stop is requested between steps.
  std::vector<io::Image> generate(const ZImageRequest& request,
                                  const RunControl& control = {}) const;

  // Whether a and b can run in the same batched forwards (generate_together): both
  // text-to-image, valid, and equal in every setting but the prompts, seeds and batch sizes.
  bool can_share_forwards(const ZImageRequest& a, const ZImageRequest& b) const;
  // Several requests in one batched run (a server joining its clients' jobs): each request's
  // images, in order, as generate() makes them alone (its noise from its own seed, each of its
  // samples conditioned on its own prompts), at the cost of one run of the summed batch. More
  // than one request must pass can_share_forwards with the first.
  std::vector<std::vector<io::Image>> generate_together(std::span<const ZImageRequest> requests,
                                                        const RunControl& control = {}) const;

  // The grid of generate_latents and of a request's init_latents: the autoencoder's.
  LatentSpace latent_space() const { return latent_space_of(vae_); }

  // The requests' images' final latents, undecoded, in order: [1, C, h, w] each, the normalised
  // latent grid (what a latent upscaler resizes for the hires fix's second pass, init_latents).
  // The requests share forwards as in generate_together.
  std::vector<Tensor> generate_latents_together(std::span<const ZImageRequest> requests,
                                                const RunControl& control = {}) const;

 private:
  // Everything but the decode: the requests' latents [summed batch, C, h, w].
  Tensor denoise_together(std::span<const ZImageRequest> requests, const RunControl& control) const;
  ZImagePipeline(text::BpeTokenizer tokenizer, models::Qwen3TextEncoder text_encoder,
                 models::ZImageTransformer transformer, models::AutoencoderKL vae);

  text::BpeTokenizer tokenizer_;
  models::Qwen3TextEncoder text_encoder_;
  models::ZImageTransformer transformer_;
  models::AutoencoderKL vae_;
  ZImageVariant variant_ = ZImageVariant::Turbo;
  ZImageDefaults defaults_{};
  SchedulerConfig scheduler_{};  // scheduler/scheduler_config.json, or the variant's static shift
  std::string model_name_;
  std::optional<models::ZImageControlNet> controlnet_;
  std::string controlnet_name_;
  std::optional<models::Siglip2VisionModel> siglip_;  // Omni's
  models::Siglip2ProcessorConfig siglip_processor_;
};

}  // namespace zflow::pipeline
