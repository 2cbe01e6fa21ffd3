// The one face every model family shows to its callers (`zflow generate`, `zflow serve`): load a
// model from its files, check a request, generate images, and describe how each was made. The
// families' own pipelines (zimage_pipeline.h, ...) keep their exact, family-specific requests;
// this layer maps the common request onto them.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"
#include "io/image.h"
#include "io/image_resize.h"
#include "io/load_quantization.h"
#include "models/lora.h"
#include "models/placement.h"
#include "pipeline/control_input.h"
#include "pipeline/latent_space.h"
#include "pipeline/latent_upscale.h"
#include "pipeline/masked_content.h"
#include "pipeline/run_control.h"
#include "pipeline/variation_seed.h"
#include "sampling/flow_sampler.h"

namespace zflow::models {
class Upscaler;
}

namespace zflow::pipeline {

class ImageGenerator;

// Where a model's components are: a diffusers folder, or each file on its own (a file given on
// its own overrides the folder's component). Which fields a family uses: Z-Image and FLUX.2 klein
// take text_encoder (Qwen3) and tokenizer; FLUX.1 takes clip_l, t5xxl and their tokenizers.
struct ModelFiles {
  std::filesystem::path model_dir;
  std::filesystem::path diffusion_model;
  std::filesystem::path text_encoder;
  std::filesystem::path tokenizer;
  std::filesystem::path clip_l;
  std::filesystem::path t5xxl;
  std::filesystem::path clip_tokenizer;
  std::filesystem::path t5_tokenizer;
  std::filesystem::path vae;
  std::filesystem::path redux;   // FLUX.1 Redux: a folder or the embedder file (--redux)
  std::filesystem::path siglip;  // its SigLIP vision tower (--siglip)
  Device device = Device::CPU;   // where the models run (bf16 activations on the GPU)
  // The transformer's block linears quantised at load (--fp8 or --int8).
  io::LoadQuantization quantize = {};
  bool offload = false;  // stream transformer and text-encoder blocks from host memory (--offload)
  std::vector<models::LoraFile> loras;  // merged into the transformer at load (--lora)
  // ControlNet files or folders (--control-net): Z-Image's one, or FLUX.1's one or several.
  std::vector<std::filesystem::path> controlnets;
};

// How an init image (and its mask) of another aspect ratio comes to the output size: A1111's
// img2img resize_mode 0-2, diffusers' VaeImageProcessor resize_mode "default", "crop", "fill".
enum class ResizeMode {
  Stretch,  // resized to the size outright (the pipelines' own Lanczos resize)
  Crop,     // resized to cover it, centred, the excess cut
  Fill,     // resized to fit in it, centred, the bands filled with its stretched edge rows
};

// What a caller asks for. Unset optionals take the model's defaults.
// A1111's hires fix (pipeline/hires_fix.h): after text-to-image, the picture is upscaled to the
// hires size and repainted there by img2img.
struct HiresFix {
  double scale = 2.0;         // the hires size: the first picture's times this, in whole tokens,
  int width = 0, height = 0;  // unless these give it (0: from the scale, or the other side)
  std::optional<int> steps;   // the second pass's schedule (default: the first's)
  double strength = 0.6;      // how much of it the second pass repaints (img2img's default)
  io::ResampleFilter upscaler = io::ResampleFilter::Lanczos;  // Lanczos or Nearest
  // Or one of A1111's latent upscalers: the first pass's latents resized, no VAE round trip.
  std::optional<LatentUpscale> latent_upscaler;
  // The latent upscaler is a default no one asked for (A1111's, when a request names none): a
  // model that cannot hand over its latents upscales with `upscaler` instead of refusing.
  bool latent_by_default = false;
  // Or an upscaler model (A1111's "R-ESRGAN 4x+", "4x-UltraSharp", ...): passes of it until the
  // hires size is covered, then Lanczos (pipeline/upscale.h); its name goes in the infotext.
  std::shared_ptr<const models::Upscaler> upscale_model;
  std::string upscale_model_name;
  // The second pass on another model (A1111's hr_checkpoint_name; null: this one), as a
  // Z-Image-Turbo draft is repainted by FLUX.1-dev. What was set for the first model gives way to
  // the second's defaults: steps (unless `steps` gives them), CFG, guidance, shift, the
  // sequence length, First Block Cache; control images, references and Redux stay with the first.
  // A latent upscaler hands the latents over where both models share their latent space.
  std::shared_ptr<const ImageGenerator> model;
  // The second pass's own text and sampling (A1111's hr_prompt, hr_negative_prompt,
  // hr_sampler_name, hr_scheduler; Forge's hr_cfg and hr_distilled_cfg); unset: the request's, or
  // with another model its defaults for cfg_scale and guidance.
  std::optional<std::string> prompt, negative_prompt;
  std::optional<FlowSampler> sampler;
  std::optional<SigmaSchedule> schedule;
  std::optional<float> cfg_scale, guidance;

  bool operator==(const HiresFix&) const = default;
};

struct GenerationRequest {
  std::string prompt;
  std::string negative_prompt;
  std::optional<int> width;
  std::optional<int> height;
  std::optional<int> steps;
  std::optional<float> cfg_scale;  // classifier-free guidance (Z-Image's g)
  std::optional<float> guidance;   // guidance embedded in the model (FLUX.1-dev)
  float cfg_normalization = 0.0f;  // Z-Image only
  double cfg_truncation = 1.0;     // Z-Image only
  std::optional<double> shift;
  SamplingChoice sampling;  // the sampler and sigma schedule (default: Euler on the model's)
  // First Block Cache's threshold (models/first_block_cache.h): later blocks are skipped on steps
  // where the first block's residual changed by at most this much. Z-Image and FLUX.1.
  std::optional<float> first_block_cache;
  std::optional<HiresFix> hires;  // text-to-image only
  uint64_t seed = 0;
  // A1111's batches (pipeline/seed_per_image.h): image k from its own seed + k, not the whole
  // batch's noise from one generator (diffusers', the default).
  bool seed_per_image = false;
  // With seed_per_image, image k's own prompt and negative prompt (the Dynamic Prompts
  // extension draws one per image from its seed); empty: `prompt` and `negative_prompt` for all.
  std::vector<std::string> image_prompts, image_negative_prompts;
  // A1111's variation seed (pipeline/variation_seed.h): the start noise bent towards another
  // seed's.
  std::optional<VariationSeed> variation;
  int batch = 1;
  std::optional<io::Image> init_image;           // img2img; with mask: inpaint
  ResizeMode resize_mode = ResizeMode::Stretch;  // for an init image of another aspect ratio
  // Or img2img from the model's own latents (generate_latents' form; the hires fix's latent
  // upscalers): Z-Image and FLUX.1.
  std::optional<Tensor> init_latents;
  std::optional<io::Image> mask;
  std::vector<io::Image> reference_images;  // FLUX.2: images to edit or draw from; Kontext: one
  std::optional<float> redux_strength;      // FLUX.1 Redux: its image tokens' weight
  std::optional<double> strength;
  // Inpaint only the masked area plus this many pixels around it, at the output size, pasted
  // back into the whole picture (pipeline/mask_crop.h).
  std::optional<int> mask_crop_padding;
  // Soften the mask first: Pillow's GaussianBlur of this radius (diffusers' mask_processor.blur).
  std::optional<float> mask_blur;
  // What the masked area holds when inpainting starts (A1111's "Masked content").
  MaskedContent masked_content = MaskedContent::Original;
  // Repaint what the mask leaves black instead (A1111's "Inpaint not masked"): the mask's grey
  // inverted before it is blurred or used.
  bool invert_mask = false;
  // A1111's inpainting, which these two make: the mask's grey rounded to black and white first
  // (its mask_round), and the original picture pasted back over the result wherever the mask
  // leaves it (its overlay), so the kept area keeps its exact pixels (pipeline/mask_crop.h).
  bool round_mask = false;
  bool overlay_original = false;
  std::optional<size_t> max_sequence_length;
  NormalMath normal_math = NormalMath::Avx2Cephes;
  bool vae_tiling = false;  // decode in tiles (large images in less memory)
  // With a ControlNet: what steers the layout (Z-Image: one; FLUX.1: one or several); FLUX.1
  // Canny / Depth: the one map they draw from.
  std::vector<ControlInput> controls;
};

// A request with every default filled in.
struct GenerationSettings {
  std::string mode;  // "txt2img", "img2img", "inpaint", "controlnet-inpaint", "edit"
  int width = 0, height = 0;
  int steps = 0;      // the schedule's length
  int steps_run = 0;  // the denoising steps that actually run (fewer for img2img)
  float cfg_scale = 0.0f;
  std::optional<float> guidance;
  double shift = 0.0;
  double strength = 1.0;
};

// Where the init image and mask came from, for the record (a request holds only pixels).
struct ImageSources {
  std::string init_image;
  std::string mask;
  std::vector<std::string> reference_images;
  std::vector<std::string> control_images;  // one per control

  // The files of `count` reference images, or (sent as data, as the server's are) their places
  // in the request: "reference_images[i]".
  std::vector<std::string> reference_names(size_t count) const;
  // The same for `count` control images: "control_images[i]" where no file is known.
  std::vector<std::string> control_names(size_t count) const;
};

// How one image was made: A1111's `parameters` text and the full request as JSON.
struct ImageRecord {
  std::string parameters;
  nlohmann::json request;
};

class ImageGenerator {
 public:
  virtual ~ImageGenerator() = default;

  virtual const std::string& model_name() const = 0;  // folder or file stem
  virtual std::string architecture() const = 0;       // "Z-Image-Turbo", "FLUX.1-dev", ...

  // Checks the request and fills in defaults; an Error names the offending field.
  virtual GenerationSettings resolve(const GenerationRequest& request) const = 0;

  // request.batch images. Throws Cancelled when control.stop is requested between steps.
  virtual std::vector<io::Image> generate(const GenerationRequest& request,
                                          const RunControl& control) const = 0;

  // Whether a and b can run in the same batched forwards (generate_together): valid requests that
  // differ only in what each sample of a batch may have of its own (prompts, seed, image count).
  virtual bool can_share_forwards(const GenerationRequest& a, const GenerationRequest& b) const = 0;
  // Several requests in one batched run: each request's images, in order, as generate() makes
  // them alone. More than one request must pass can_share_forwards with the first.
  virtual std::vector<std::vector<io::Image>> generate_together(
      std::span<const GenerationRequest> requests, const RunControl& control) const = 0;

  virtual ImageRecord record(const GenerationRequest& request, const ImageSources& sources,
                             int batch_index) const = 0;

  // The latent grid generate_latents hands over and init_latents take (Z-Image and FLUX.1, both
  // FLUX.1's autoencoder's); none where the family cannot hand its latents over.
  virtual std::optional<LatentSpace> latent_space() const { return std::nullopt; }
  // The requests' images' final latents, undecoded, in order: [1, C, h, w] each, the model's
  // normalised latent grid, for a latent upscaler (pipeline/latent_upscale.h) to resize. More than
  // one request must pass can_share_forwards with the first. An Error where the family cannot hand
  // them over (this default).
  virtual std::vector<Tensor> generate_latents_together(std::span<const GenerationRequest> requests,
                                                        const RunControl& control) const;
  // request.batch images' final latents: generate_latents_together of the one request.
  std::vector<Tensor> generate_latents(const GenerationRequest& request,
                                       const RunControl& control) const {
    return generate_latents_together({&request, 1}, control);
  }
};

// The denoising steps a run of `steps` takes: all of them for text-to-image, the last
// steps - img2img_start(steps, strength) when starting from an image (diffusers' t_start).
int denoising_steps(int steps, double strength, bool from_image);

// Where the files' models run: their device, with --offload's block streaming (an Error naming
// --offload when the device is not a GPU).
models::Placement placement_for(const ModelFiles& files);

// Loads the model the files hold, whichever family it is; an Error names the file and what it
// holds when zflow does not know it.
std::unique_ptr<ImageGenerator> load_generator(const ModelFiles& files);

}  // namespace zflow::pipeline
