#include "server/api_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "io/image.h"
#include "pipeline/flux_controlnet_input.h"
#include "pipeline/hires_fix.h"
#include "pipeline/outpaint.h"
#include "sampling/flow_sampler.h"
#include "server/base64.h"

namespace zflow::server {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& field, const std::string& message) {
  throw ApiError(400, field, fmt::format("{}: {}", field, message));
}

// Typed, optional field access: absent or null gives nullopt, a wrong type names the field.
std::optional<std::string> get_string(const json& body, const std::string& field) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_string()) bad(field, fmt::format("expected a string, got {}", it->type_name()));
  return it->get<std::string>();
}

std::optional<int64_t> get_int(const json& body, const std::string& field, int64_t lo, int64_t hi) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  int64_t v;
  if (it->is_number_integer())
    v = it->get<int64_t>();
  else if (it->is_number_float() && std::floor(it->get<double>()) == it->get<double>() &&
           std::abs(it->get<double>()) < 1e18)
    v = static_cast<int64_t>(it->get<double>());
  else
    bad(field, fmt::format("expected an integer, got {}", it->dump()));
  if (v < lo || v > hi) bad(field, fmt::format("expected {}..{}, got {}", lo, hi, v));
  return v;
}

std::optional<double> get_number(const json& body, const std::string& field, double lo, double hi) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) bad(field, fmt::format("expected a number, got {}", it->type_name()));
  const double v = it->get<double>();
  if (!(v >= lo && v <= hi)) bad(field, fmt::format("expected {}..{}, got {}", lo, hi, v));
  return v;
}

// true / false, or A1111's 1 / 0.
std::optional<bool> get_flag(const json& body, const std::string& field) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (it->is_boolean()) return it->get<bool>();
  if (it->is_number_integer()) return it->get<int64_t>() != 0;
  bad(field, fmt::format("expected true or false, got {}", it->dump()));
}

std::string prompt_field(const json& body, const std::string& field, bool required,
                         const RequestLimits& limits) {
  const auto p = get_string(body, field);
  if (!p && required) bad(field, "required");
  if (p && p->size() > limits.max_prompt_bytes)
    bad(field, fmt::format("{} bytes, over the limit of {}", p->size(), limits.max_prompt_bytes));
  return p.value_or("");
}

void check_side(const std::string& field, int64_t v, const RequestLimits& limits) {
  if (v < 16 || v > limits.max_side || v % 16 != 0)
    bad(field, fmt::format("expected a multiple of 16 from 16 to {}, got {}", limits.max_side, v));
}

std::optional<int> side_field(const json& body, const std::string& field,
                              const RequestLimits& limits) {
  const auto v = get_int(body, field, INT32_MIN, INT32_MAX);
  if (!v) return std::nullopt;
  check_side(field, *v, limits);
  return static_cast<int>(*v);
}

// Seeds: absent, null or negative (A1111's -1) draw one; torch uses the low 32 bits only.
uint64_t seed_field(const json& body, const std::string& field) {
  const auto it = body.find(field);
  if (it != body.end() && !it->is_null()) {
    if (it->is_number_unsigned()) return it->get<uint64_t>();
    if (!it->is_number_integer())
      bad(field, fmt::format("expected an integer, got {}", it->dump()));
    if (it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  }
  return std::random_device{}();
}

// FLUX.2 klein and Z-Image Omni edit with several reference images; each adds its tokens to
// every forward.
constexpr size_t kMaxReferenceImages = 4;
constexpr size_t kMaxControlImages = 4;        // a FLUX.1 ControlNet's controls in one request
constexpr int64_t kMaxMaskCropPadding = 4096;  // pixels around the mask (inpainting only it)
constexpr double kMaxMaskBlur = 256;           // the mask's Gaussian blur radius, pixels

io::Image image_field(const std::string& field, const json& value) {
  if (!value.is_string()) bad(field, "expected a base64-encoded PNG, JPEG or WebP image");
  const auto bytes = base64_decode(value.get<std::string>());
  if (!bytes) bad(field, "not valid base64");
  try {
    return io::decode_image(*bytes, field);
  } catch (const Error& e) {
    bad(field, e.what());
  }
}

OutputFormat format_field(const json& body, const std::string& field) {
  const auto f = get_string(body, field);
  if (!f || *f == "png") return OutputFormat::Png;
  if (*f == "jpeg" || *f == "jpg") return OutputFormat::Jpeg;
  if (*f == "webp") return OutputFormat::Webp;
  bad(field, fmt::format("expected png, jpeg or webp, got '{}'", *f));
}

SigmaSchedule schedule_named(const std::string& field, const std::string& name) {
  const auto schedule = parse_sigma_schedule(name);
  if (!schedule)
    bad(field,
        fmt::format("unknown schedule '{}'; this server has: {}", name, sigma_schedule_choices()));
  return *schedule;
}

// A sampler's name as the APIs take it, under `field`: the solver, and the schedule A1111 before
// 1.9 named after it ("DPM++ 2M Karras"). An unknown name is an error: another sampler would
// silently make another picture.
struct SamplerName {
  FlowSampler sampler;
  std::optional<SigmaSchedule> schedule;
};
SamplerName sampler_named(const std::string& field, const std::string& name) {
  std::string sampler = name;
  std::optional<SigmaSchedule> schedule;
  if (!parse_flow_sampler(sampler)) {
    const size_t space = sampler.rfind(' ');
    if (space != std::string::npos && parse_flow_sampler(sampler.substr(0, space)) &&
        parse_sigma_schedule(sampler.substr(space + 1))) {
      schedule = parse_sigma_schedule(sampler.substr(space + 1));
      sampler.resize(space);
    }
  }
  const auto parsed = parse_flow_sampler(sampler);
  if (!parsed)
    bad(field,
        fmt::format("unknown sampler '{}'; this server has: {}", name, flow_sampler_choices()));
  return {*parsed, schedule};
}

// The sampler under `field` and the sigma schedule under "scheduler" (both optional); "scheduler"
// wins over a schedule in the sampler's name.
void sampling_fields(const json& body, const std::string& field, pipeline::GenerationRequest& r) {
  if (const auto name = get_string(body, field); name && !name->empty()) {
    const SamplerName s = sampler_named(field, *name);
    r.sampling.sampler = s.sampler;
    if (s.schedule) r.sampling.schedule = *s.schedule;
  }
  if (const auto name = get_string(body, "scheduler"); name && !name->empty())
    r.sampling.schedule = schedule_named("scheduler", *name);
}

// A registry name, a LoRA's, a ControlNet's or an upscaler's as a request gives it: never a path
// (the registry refuses names it does not offer), so only its length is checked here.
bool plausible_name(const std::string& name) {
  return !name.empty() && name.size() <= 255;
}

std::string registry_name(const std::string& field, const json& value) {
  if (!value.is_string() || !plausible_name(value.get<std::string>()))
    bad(field, fmt::format("expected a name, got {}", value.dump()));
  return value.get<std::string>();
}

// Where an API keeps the hires fix's settings; nullptr where it has no such field.
struct HiresKeys {
  const char *scale, *width, *height, *steps, *strength, *upscaler;
  // Without an upscaler named: A1111's default, the latent upscaler "Latent"; else Lanczos.
  bool latent_by_default;
  // The second pass's own model, texts, sampling and guidance.
  const char *model, *prompt, *negative_prompt, *sampler, *scheduler, *cfg_scale, *guidance;
};
// A1111's hr_cfg / hr_distilled_cfg (Forge's) are left out: Forge clients send its defaults (1 and
// 3.5) whether or not they mean them.
constexpr HiresKeys kA1111Hires{"hr_scale",
                                "hr_resize_x",
                                "hr_resize_y",
                                "hr_second_pass_steps",
                                "denoising_strength",
                                "hr_upscaler",
                                true,
                                "hr_checkpoint_name",
                                "hr_prompt",
                                "hr_negative_prompt",
                                "hr_sampler_name",
                                "hr_scheduler",
                                nullptr,
                                nullptr};
constexpr HiresKeys kZflowHires{
    "hires_scale",     "hires_width",           "hires_height",  "hires_steps",
    "hires_strength",  "hires_upscaler",        false,           "hires_model",
    "hires_prompt",    "hires_negative_prompt", "hires_sampler", "hires_scheduler",
    "hires_cfg_scale", "hires_guidance"};

// A1111's way of saying "as the first pass" in its hr_* name fields.
bool means_same(const std::optional<std::string>& name) {
  return !name || name->empty() || name->starts_with("Use same ");
}

// The hires fix's second pass on its own terms (model, prompts, sampling, guidance), where the
// request gives them.
void hires_second_pass_fields(const json& body, const HiresKeys& keys, const RequestLimits& limits,
                              JobSpec& spec, pipeline::HiresFix& h) {
  if (const auto name = get_string(body, keys.model); !means_same(name))
    spec.hires_model = registry_name(keys.model, *name);  // the caller checks it exists
  if (auto text = prompt_field(body, keys.prompt, false, limits); !text.empty())
    h.prompt = std::move(text);
  if (auto text = prompt_field(body, keys.negative_prompt, false, limits); !text.empty())
    h.negative_prompt = std::move(text);
  if (const auto name = get_string(body, keys.sampler); !means_same(name)) {
    const SamplerName s = sampler_named(keys.sampler, *name);
    h.sampler = s.sampler;
    h.schedule = s.schedule;
  }
  if (const auto name = get_string(body, keys.scheduler); !means_same(name))
    h.schedule = schedule_named(keys.scheduler, *name);
  if (keys.cfg_scale)
    if (const auto v = get_number(body, keys.cfg_scale, 0, 100))
      h.cfg_scale = static_cast<float>(*v);
  if (keys.guidance)
    if (const auto v = get_number(body, keys.guidance, 0, 100)) h.guidance = static_cast<float>(*v);
}

// The hires fix (pipeline/hires_fix.h) from `keys`; its size is held to the limits (for the
// request's size, or 1024 where the model picks).
void hires_fields(const json& body, const HiresKeys& keys, const RequestLimits& limits,
                  JobSpec& spec) {
  pipeline::GenerationRequest& r = spec.request;
  pipeline::HiresFix h;
  if (const auto v = get_number(body, keys.scale, 0.01, 8)) h.scale = *v;
  h.width = static_cast<int>(get_int(body, keys.width, 0, limits.max_side).value_or(0));
  h.height = static_cast<int>(get_int(body, keys.height, 0, limits.max_side).value_or(0));
  if (const auto v = get_int(body, keys.steps, 0, limits.max_steps); v && *v > 0)
    h.steps = static_cast<int>(*v);
  if (const auto v = get_number(body, keys.strength, 0, 1)) {
    if (*v == 0) bad(keys.strength, "the hires pass repaints a part above 0");
    h.strength = *v;
  }
  if (const auto name = get_string(body, keys.upscaler); name && !name->empty()) {
    std::string lower = *name;
    std::ranges::transform(lower, lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower == "nearest")
      h.upscaler = io::ResampleFilter::Nearest;
    else if (const auto latent = pipeline::parse_latent_upscale(*name))
      h.latent_upscaler = latent;
    else if (lower.starts_with("latent"))
      bad(keys.upscaler, fmt::format("'{}': the latent upscalers are Latent, Latent "
                                     "(antialiased), Latent (bicubic), Latent (bicubic "
                                     "antialiased), Latent (nearest) and Latent (nearest-exact)",
                                     *name));
    else if (lower != "lanczos" && lower != "none")
      spec.upscaler = registry_name(keys.upscaler, *name);  // the caller checks it exists
  } else if (keys.latent_by_default) {
    h.latent_upscaler = pipeline::LatentUpscale::Bilinear;
    h.latent_by_default = true;  // FLUX.2, which cannot, upscales with Lanczos instead
  }
  hires_second_pass_fields(body, keys, limits, spec, h);
  if (r.init_image) bad(keys.scale, "the hires fix follows text-to-image, not img2img");
  try {
    const auto [w, h2] = pipeline::hires_size(h, r.width.value_or(1024), r.height.value_or(1024));
    check_side(keys.width, w, limits);
    check_side(keys.height, h2, limits);
  } catch (const ApiError&) {
    throw;
  } catch (const Error& e) {
    bad(keys.scale, e.what());
  }
  r.hires = h;
}

// The fields every API shares under the same names (zflow's extensions to OpenAI's API).
void common_fields(const json& body, const RequestLimits& limits, pipeline::GenerationRequest& r) {
  r.negative_prompt = prompt_field(body, "negative_prompt", false, limits);
  if (const auto v = get_int(body, "steps", 1, limits.max_steps)) r.steps = static_cast<int>(*v);
  if (const auto v = get_number(body, "cfg_scale", 0, 100)) r.cfg_scale = static_cast<float>(*v);
  if (const auto v = get_number(body, "guidance", 0, 100)) r.guidance = static_cast<float>(*v);
  if (const auto v = get_number(body, "shift", 0.01, 100)) r.shift = *v;
  if (const auto v = get_number(body, "first_block_cache", 0.001, 10))
    r.first_block_cache = static_cast<float>(*v);
  r.seed = seed_field(body, "seed");
}

// A1111's variation seed: `strength_key` in [0, 1] (0, the default, turns it off) and the other
// seed in `seed_key` (absent or negative: a random one, as A1111 draws a subseed of -1).
void variation_fields(const json& body, const std::string& seed_key,
                      const std::string& strength_key, pipeline::GenerationRequest& r) {
  const auto strength = get_number(body, strength_key, 0, 1);
  if (!strength || *strength == 0.0) return;
  r.variation = pipeline::VariationSeed{seed_field(body, seed_key), static_cast<float>(*strength)};
}

// Outpainting margins: N pixels on every side or [LEFT, TOP, RIGHT, BOTTOM]; the init image
// becomes the grown canvas and the mask its margins (pipeline/outpaint.h).
void outpaint_field(const json& body, const std::string& field, pipeline::GenerationRequest& r) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return;
  const auto margin = [&](const json& v) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
        v.get<int64_t>() > pipeline::kMaxOutpaintMargin)
      bad(field, fmt::format("each margin must be a whole number of pixels from 0 to {}, got {}",
                             pipeline::kMaxOutpaintMargin, v.dump()));
    return static_cast<int>(v.get<int64_t>());
  };
  pipeline::OutpaintMargins m;
  if (it->is_array() && it->size() == 4)
    m = {margin((*it)[0]), margin((*it)[1]), margin((*it)[2]), margin((*it)[3])};
  else if (it->is_number())
    m.left = m.top = m.right = m.bottom = margin(*it);
  else
    bad(field, fmt::format("expected N pixels or [LEFT, TOP, RIGHT, BOTTOM], got {}", it->dump()));
  if (m == pipeline::OutpaintMargins{}) bad(field, "every margin is 0: nothing to draw");
  if (!r.init_image) bad(field, "outpainting needs init_image (the picture to grow)");
  if (r.mask) bad(field, "outpainting makes its own mask: send a mask or margins, not both");
  try {
    pipeline::apply_outpaint(r, m);
  } catch (const Error& e) {
    bad(field, e.what());
  }
}

// A Union ControlNet's mode at body[key]: a number or a name of InstantX's table.
std::optional<int> control_mode_field(const json& body, const std::string& key,
                                      const std::string& field) {
  const auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  const std::string mode = it->is_number_integer() ? std::to_string(it->get<int64_t>())
                           : it->is_string()       ? it->get<std::string>()
                                                   : std::string();
  const std::optional<int> found = pipeline::flux_union_mode(mode);
  if (!found)
    bad(field, fmt::format("expected a number or one of {}, got {}", pipeline::flux_union_modes(),
                           it->dump()));
  return found;
}

// One control from `body`: its image at `image_key`, then `scale_key` (0..2), `start_key` /
// `end_key` (0..1, FLUX.1) and "mode" where given; errors name `prefix` + the key.
pipeline::ControlInput control_fields(const json& body, const std::string& prefix,
                                      const std::string& image_key, const std::string& scale_key,
                                      const std::string& start_key, const std::string& end_key,
                                      const std::string& mode_key) {
  pipeline::ControlInput c{image_field(prefix + image_key, body.at(image_key)), {}, {}, {}, {}};
  if (const auto v = get_number(body, scale_key, 0, 2)) c.scale = static_cast<float>(*v);
  c.start = get_number(body, start_key, 0, 1);
  c.end = get_number(body, end_key, 0, 1);
  c.mode = control_mode_field(body, mode_key, prefix + mode_key);
  return c;
}

// zflow's ControlNet fields: "controlnet" (a name from the server's ControlNet folder, or for
// FLUX.1 an array of names run side by side, control k read by ControlNet k), "control_image"
// (base64), "control_scale", and for FLUX.1 "control_start", "control_end" and a Union
// ControlNet's "control_mode" (a number or a name); or, for FLUX.1 ControlNets reading several,
// "controls": [{"image", "scale", "start", "end", "mode"}, ...]. A ControlNet needs an image,
// while an image alone is for a model that reads one itself (FLUX.1 Canny / Depth; the model
// refuses it else).
void controlnet_fields(const json& body, JobSpec& spec) {
  if (const auto it = body.find("controlnet"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) {
      spec.controlnets = {registry_name("controlnet", *it)};
    } else {
      if (it->empty() || it->size() > kMaxControlImages)
        bad("controlnet",
            fmt::format("expected a name or an array of 1 to {} names", kMaxControlImages));
      for (size_t i = 0; i < it->size(); ++i)
        spec.controlnets.push_back(registry_name(fmt::format("controlnet[{}]", i), (*it)[i]));
    }
  }
  if (const auto it = body.find("control_image"); it != body.end() && !it->is_null())
    spec.request.controls.push_back(control_fields(body, "", "control_image", "control_scale",
                                                   "control_start", "control_end", "control_mode"));
  if (const auto it = body.find("controls"); it != body.end() && !it->is_null()) {
    if (!spec.request.controls.empty())
      bad("controls", "give either control_image or controls, not both");
    if (!it->is_array() || it->empty() || it->size() > kMaxControlImages)
      bad("controls", fmt::format("expected an array of 1 to {} controls", kMaxControlImages));
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string at = fmt::format("controls[{}].", i);
      const json& one = (*it)[i];
      if (!one.is_object() || !one.contains("image")) bad(at + "image", "required");
      spec.request.controls.push_back(
          control_fields(one, at, "image", "scale", "start", "end", "mode"));
    }
  }
  if (!spec.controlnets.empty() && spec.request.controls.empty())
    bad("control_image", "a controlnet needs its control_image (canny edges, depth, pose, ...)");
}

// The A1111 ControlNet extension's units, alwayson_scripts.controlnet.args: each enabled one has
// "image" (or "input_image", base64), "model" (a name, its " [hash]" suffix ignored), "weight"
// (default 1), "guidance_start" / "guidance_end" (FLUX.1); zflow runs no preprocessors, so
// "module" must be none. Units that all name one model give it every control (a FLUX.1 ControlNet
// reads several); units that name different models run those side by side, unit k's control
// read by its own model, so each model may then be named once.
void a1111_controlnet(const json& body, JobSpec& spec) {
  const auto scripts = body.find("alwayson_scripts");
  if (scripts == body.end() || !scripts->is_object()) return;
  const auto cn = scripts->find("controlnet");
  if (cn == scripts->end() || cn->is_null()) return;
  const std::string field = "alwayson_scripts.controlnet.args";
  if (!cn->is_object() || !cn->contains("args") || !(*cn)["args"].is_array())
    bad(field, "expected {\"args\": [unit, ...]}");
  const json& units = (*cn)["args"];
  std::vector<std::string> models;  // the enabled units' models, in order
  for (size_t i = 0; i < units.size(); ++i) {
    const json& u = units[i];
    const std::string at = fmt::format("{}[{}]", field, i);
    if (!u.is_object()) bad(field, "every unit must be an object");
    if (u.contains("enabled") && !u["enabled"].is_boolean())
      bad(at + ".enabled", "expected true or false");
    if (!u.value("enabled", true)) continue;
    if (spec.request.controls.size() == kMaxControlImages)
      bad(field, fmt::format("at most {} enabled units", kMaxControlImages));
    if (const auto m = get_string(u, "module"); m && *m != "none" && *m != "None")
      bad(at + ".module",
          fmt::format("preprocessor '{}': zflow runs none; send the processed control image "
                      "with module none",
                      *m));
    if (!u.contains("model")) bad(at + ".model", "required");
    std::string model = registry_name(at + ".model", u["model"]);
    if (const size_t hash = model.rfind(" ["); hash != std::string::npos && model.ends_with("]"))
      model.resize(hash);
    models.push_back(model);
    const std::string image_key = u.contains("image") ? "image" : "input_image";
    if (!u.contains(image_key)) bad(at + ".image", "required");
    pipeline::ControlInput c =
        control_fields(u, at + ".", image_key, "weight", "guidance_start", "guidance_end", "");
    c.scale = c.scale.value_or(1.0f);  // the extension's default weight
    spec.request.controls.push_back(std::move(c));
  }
  if (models.empty()) return;
  std::vector<std::string> distinct = models;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  if (distinct.size() == 1) {
    spec.controlnets = {models.front()};
  } else if (distinct.size() == models.size()) {
    spec.controlnets = models;
  } else {
    bad(field,
        "units of several ControlNets run side by side, one unit each: name each model "
        "once (or every unit the same model)");
  }
}

float lora_scale(const std::string& field, double scale) {
  if (!(scale >= -8 && scale <= 8))
    bad(field, fmt::format("expected a scale -8..8, got {}", scale));
  return static_cast<float>(scale);
}

void add_lora(std::vector<LoraChoice>& loras, LoraChoice lora, const std::string& field,
              const RequestLimits& limits) {
  if (!plausible_name(lora.name)) bad(field, "expected a LoRA name");
  if (static_cast<int>(loras.size()) >= limits.max_loras)
    bad(field, fmt::format("more than {} LoRAs", limits.max_loras));
  loras.push_back(std::move(lora));
}

std::vector<LoraChoice> loras_field(const json& body, const std::string& field,
                                    const RequestLimits& limits) {
  std::vector<LoraChoice> loras;
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return loras;
  if (!it->is_array()) bad(field, "expected an array of {\"name\": ..., \"scale\": ...}");
  for (size_t i = 0; i < it->size(); ++i) {
    const std::string item = fmt::format("{}[{}]", field, i);
    const json& l = (*it)[i];
    if (!l.is_object()) bad(item, "expected {\"name\": ..., \"scale\": ...}");
    const auto name = l.find("name");
    if (name == l.end() || !name->is_string()) bad(item + ".name", "expected the LoRA's name");
    double scale = 1.0;
    if (const auto s = l.find("scale"); s != l.end() && !s->is_null()) {
      if (!s->is_number())
        bad(item + ".scale", fmt::format("expected a number, got {}", s->dump()));
      scale = s->get<double>();
    }
    add_lora(loras, {name->get<std::string>(), lora_scale(item + ".scale", scale)}, item, limits);
  }
  return loras;
}

// Cuts A1111's <lora:NAME> / <lora:NAME:SCALE> tags out of `prompt` into `loras`.
void take_prompt_loras(std::string& prompt, std::vector<LoraChoice>& loras,
                       const RequestLimits& limits) {
  std::string kept;
  size_t at = 0;
  for (size_t open = prompt.find("<lora:"); open != std::string::npos;
       open = prompt.find("<lora:", at)) {
    const size_t close = prompt.find('>', open);
    if (close == std::string::npos) bad("prompt", "a <lora: tag has no closing >");
    const std::string tag = prompt.substr(open + 6, close - open - 6);
    const size_t colon = tag.rfind(':');
    LoraChoice lora{tag, 1.0f};
    if (colon != std::string::npos) {
      lora.name = tag.substr(0, colon);
      char* end = nullptr;
      const std::string number = tag.substr(colon + 1);
      const double scale = std::strtod(number.c_str(), &end);
      if (number.empty() || end != number.c_str() + number.size())
        bad("prompt", fmt::format("<lora:{}>: '{}' is not a scale", tag, number));
      lora.scale = lora_scale("prompt", scale);
    }
    add_lora(loras, lora, "prompt", limits);
    kept += prompt.substr(at, open - at);
    at = close + 1;
  }
  prompt = kept + prompt.substr(at);
}

std::string model_field(const json& body, const std::string& field,
                        const std::string& default_model) {
  const auto m = get_string(body, field);
  if (m && !m->empty()) return *m;
  if (default_model.empty()) throw ApiError(404, field, "no models are configured");
  return default_model;
}

}  // namespace

json parse_json_object(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) throw ApiError(400, "", "the request body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "", "the request body must be a JSON object");
  return j;
}

namespace {

// OpenAI sizes: "auto" or WIDTHxHEIGHT.
void size_field(const json& body, const std::string& field, const RequestLimits& limits,
                pipeline::GenerationRequest& r) {
  const auto size = get_string(body, field);
  if (!size || *size == "auto") return;
  int w = 0, h = 0;
  char x = 0;
  if (std::sscanf(size->c_str(), "%d%c%d", &w, &x, &h) != 3 || x != 'x' ||
      fmt::format("{}x{}", w, h) != *size)
    bad(field, fmt::format("expected WIDTHxHEIGHT such as 1024x1024, got '{}'", *size));
  check_side(field, w, limits);
  check_side(field, h, limits);
  r.width = w;
  r.height = h;
}

void b64_json_only(const json& body) {
  if (const auto rf = get_string(body, "response_format"); rf && *rf != "b64_json")
    bad("response_format", fmt::format("only b64_json is served, got '{}'", *rf));
}

io::Image decoded(const std::string& field, const std::string& bytes) {
  try {
    return io::decode_image(std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()),
                            field);
  } catch (const Error& e) {
    bad(field, e.what());
  }
}

// OpenAI's mask: alpha 0 marks what to edit; as zflow's mask (white = repaint) 255 - alpha. A
// mask without alpha is taken as a grey mask already.
io::Image edit_mask(const std::string& bytes, const io::Image& image) {
  io::Image mask = decoded("mask", bytes);
  if (mask.width != image.width || mask.height != image.height)
    bad("mask", fmt::format("the mask is {}x{} but the image is {}x{}: they must match", mask.width,
                            mask.height, image.width, image.height));
  std::optional<std::vector<uint8_t>> alpha;
  try {
    alpha = io::decode_alpha(
        std::span(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), "mask");
  } catch (const Error& e) {
    bad("mask", e.what());
  }
  if (alpha)
    for (size_t i = 0; i < alpha->size(); ++i)
      std::fill_n(mask.rgb.begin() + 3 * static_cast<std::ptrdiff_t>(i), 3,
                  static_cast<uint8_t>(255 - (*alpha)[i]));
  return mask;
}

}  // namespace

JobSpec parse_openai_generation(const json& body, const RequestLimits& limits,
                                const std::string& default_model) {
  JobSpec spec;
  auto& r = spec.request;
  r.prompt = prompt_field(body, "prompt", true, limits);
  spec.model = model_field(body, "model", default_model);
  spec.loras = loras_field(body, "loras", limits);
  controlnet_fields(body, spec);
  r.batch = static_cast<int>(get_int(body, "n", 1, limits.max_batch).value_or(1));
  size_field(body, "size", limits, r);
  b64_json_only(body);
  spec.format = format_field(body, "output_format");
  sampling_fields(body, "sampler", r);
  common_fields(body, limits, r);
  return spec;
}

json openai_form_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
  static const std::set<std::string> text = {
      "prompt",        "negative_prompt", "model",      "size", "response_format",
      "output_format", "quality",         "background", "user", "input_fidelity"};
  json body = json::object();
  for (const auto& [name, value] : fields) {
    if (!text.contains(name)) {
      const json parsed = json::parse(value, nullptr, false);
      if (parsed.is_number() || parsed.is_boolean()) {
        body[name] = parsed;
        continue;
      }
    }
    body[name] = value;
  }
  return body;
}

JobSpec parse_openai_edit(const OpenAiEdit& edit, const RequestLimits& limits,
                          const std::string& default_model) {
  const json& body = edit.fields;
  JobSpec spec;
  auto& r = spec.request;
  r.prompt = prompt_field(body, "prompt", true, limits);
  spec.model = model_field(body, "model", default_model);
  spec.loras = loras_field(body, "loras", limits);
  r.batch = static_cast<int>(get_int(body, "n", 1, limits.max_batch).value_or(1));
  size_field(body, "size", limits, r);
  b64_json_only(body);
  spec.format = format_field(body, "output_format");
  sampling_fields(body, "sampler", r);
  common_fields(body, limits, r);
  if (edit.images.empty()) bad("image", "expected one or more image files to edit");
  if (edit.images.size() > kMaxReferenceImages)
    bad("image", fmt::format("at most {} images, got {}", kMaxReferenceImages, edit.images.size()));
  std::vector<io::Image> images;
  for (size_t i = 0; i < edit.images.size(); ++i)
    images.push_back(
        decoded(edit.images.size() == 1 ? "image" : fmt::format("image[{}]", i), edit.images[i]));
  if (edit.mask) {
    r.mask = edit_mask(*edit.mask, images.front());
    r.init_image = std::move(images.front());
    images.erase(images.begin());
    r.strength = get_number(body, "strength", 0, 1);
  } else if (body.contains("strength")) {
    bad("strength", "strength applies to inpainting: send a mask too");
  }
  r.reference_images = std::move(images);
  return spec;
}

// The Dynamic Prompts extension's alwayson_scripts entry ("Dynamic Prompts v2.17.1": {"args":
// [...]}, its title with any version): its positional arguments, as its process() takes them.
// Enabled (the default), the prompts are templates: random mode, or combinatorial with its
// batches and max generations; what zflow does not offer (magic prompts, I'm feeling lucky,
// attention grabbing, fixed or unlinked seeds, Jinja, no images) is refused when turned on.
void a1111_dynamic_prompts(const json& body, JobSpec& spec) {
  const auto scripts = body.find("alwayson_scripts");
  if (scripts == body.end() || !scripts->is_object()) return;
  for (const auto& [name, entry] : scripts->items()) {
    std::string lower = name;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (!lower.starts_with("dynamic prompts") || entry.is_null()) continue;
    const std::string field = fmt::format("alwayson_scripts.{}.args", name);
    if (!entry.is_object() || !entry.contains("args") || !entry["args"].is_array())
      bad(field, "expected {\"args\": [is_enabled, is_combinatorial, ...]}");
    const json& args = entry["args"];
    const auto arg = [&](size_t i) { return i < args.size() ? args[i] : json(); };
    const auto flag = [&](size_t i, bool fallback) {
      const json a = arg(i);
      if (a.is_null()) return fallback;
      if (!a.is_boolean()) bad(fmt::format("{}[{}]", field, i), "expected true or false");
      return a.get<bool>();
    };
    const auto count = [&](size_t i, int64_t fallback, int64_t lo) {
      const json a = arg(i);
      if (a.is_null()) return fallback;
      if (!a.is_number_integer() || a.get<int64_t>() < lo || a.get<int64_t>() > (1 << 20))
        bad(fmt::format("{}[{}]", field, i), fmt::format("expected a whole number from {}", lo));
      return a.get<int64_t>();
    };
    if (!flag(0, true)) {
      spec.templates = PromptTemplates{.mode = PromptTemplates::Mode::Off};
      return;
    }
    static constexpr std::pair<size_t, const char*> kUnoffered[] = {
        {3, "magic prompts"},    {4, "I'm feeling lucky"},   {5, "attention grabbing"},
        {10, "a fixed seed"},    {11, "unlinking the seed"}, {13, "Jinja templates"},
        {14, "making no images"}};
    for (const auto& [i, what] : kUnoffered)
      if (flag(i, false))
        bad(fmt::format("{}[{}]", field, i), fmt::format("{} is not offered", what));
    PromptTemplates t;
    if (flag(1, false)) {
      t.mode = PromptTemplates::Mode::Combinatorial;
      t.repeats = static_cast<int>(count(2, 1, 1));
      t.max_prompts = static_cast<size_t>(count(15, 0, 0));
    }
    spec.templates = t;
  }
}

// A1111 fields that would change the picture in ways zflow does not offer: refused, not ignored.
// Clients send them at their defaults (false, empty, "None", 0 or -1), which pass.
void refuse_unoffered_a1111(const json& body) {
  if (get_flag(body, "restore_faces").value_or(false))
    bad("restore_faces", "face restoration is not offered");
  if (get_flag(body, "tiling").value_or(false)) bad("tiling", "seamless tiling is not offered");
  const auto named = [&](const char* field) {
    const auto name = get_string(body, field);
    return name && !name->empty() && *name != "None";
  };
  if (named("refiner_checkpoint"))
    bad("refiner_checkpoint",
        "switching models partway through the steps is not offered; to repaint the picture with "
        "another model after the first pass, send enable_hr with hr_checkpoint_name");
  if (named("script_name")) bad("script_name", "scripts are not offered");
  for (const char* field : {"seed_resize_from_w", "seed_resize_from_h"})
    if (get_int(body, field, -1, 1 << 20).value_or(-1) > 0)
      bad(field, "resizing the seed's noise from another size is not offered");
}

JobSpec parse_a1111(const json& body, bool img2img, const RequestLimits& limits,
                    const std::string& default_model) {
  refuse_unoffered_a1111(body);
  JobSpec spec;
  auto& r = spec.request;
  r.prompt = prompt_field(body, "prompt", false, limits);
  std::string model = default_model;
  if (const auto it = body.find("override_settings"); it != body.end() && !it->is_null()) {
    if (!it->is_object()) bad("override_settings", "expected an object");
    model = model_field(*it, "sd_model_checkpoint", default_model);
  }
  if (model.empty()) throw ApiError(404, "sd_model_checkpoint", "no models are configured");
  spec.model = model;
  spec.loras = loras_field(body, "loras", limits);
  take_prompt_loras(r.prompt, spec.loras, limits);
  a1111_controlnet(body, spec);
  a1111_dynamic_prompts(body, spec);
  spec.send_images = get_flag(body, "send_images").value_or(true);
  r.width = side_field(body, "width", limits);
  r.height = side_field(body, "height", limits);
  // A1111's batches: image k from seed + k, n_iter batches of batch_size in a row (here one run
  // of them all where they share forwards).
  r.seed_per_image = true;
  r.batch = static_cast<int>(get_int(body, "batch_size", 1, limits.max_batch).value_or(1));
  if (const auto n_iter = get_int(body, "n_iter", 1, limits.max_batch); n_iter && *n_iter > 1) {
    if (r.batch * *n_iter > limits.max_batch)
      bad("n_iter", fmt::format("{} batches of {} is over this server's {} images a request",
                                *n_iter, r.batch, limits.max_batch));
    r.batch *= static_cast<int>(*n_iter);
  }
  if (!img2img && get_flag(body, "enable_hr").value_or(false))
    hires_fields(body, kA1111Hires, limits, spec);
  // sampler_index is the older name of sampler_name.
  sampling_fields(body, body.contains("sampler_name") ? "sampler_name" : "sampler_index", r);
  common_fields(body, limits, r);
  variation_fields(body, "subseed", "subseed_strength", r);
  // Forge's name for FLUX's embedded guidance.
  if (const auto v = get_number(body, "distilled_cfg_scale", 0, 100))
    r.guidance = static_cast<float>(*v);
  if (img2img) {
    const auto it = body.find("init_images");
    if (it == body.end() || !it->is_array() || it->empty())
      bad("init_images", "expected an array with one base64 image");
    if (it->size() > 1) bad("init_images", "only one init image is supported");
    r.init_image = image_field("init_images[0]", (*it)[0]);
    if (const auto m = body.find("mask"); m != body.end() && !m->is_null()) {
      r.mask = image_field("mask", *m);
      // As A1111 inpaints: the mask rounded to black and white first (its mask_round default),
      // the picture laid back over the result wherever the mask leaves it.
      r.round_mask = get_flag(body, "mask_round").value_or(true);
      r.overlay_original = true;
    }
    r.strength = get_number(body, "denoising_strength", 0, 1).value_or(0.75);
    // 0 just resize, 1 crop and resize, 2 resize and fill; 3 (latent upscale) is not offered.
    const auto resize = get_int(body, "resize_mode", 0, 3).value_or(0);
    if (resize == 3)
      bad("resize_mode",
          "3 (just resize, latent upscale) is not offered: 0 just resize, 1 crop "
          "and resize, 2 resize and fill");
    constexpr pipeline::ResizeMode kResizeModes[] = {
        pipeline::ResizeMode::Stretch, pipeline::ResizeMode::Crop, pipeline::ResizeMode::Fill};
    r.resize_mode = kResizeModes[resize];
    if (const auto v = get_number(body, "mask_blur", 0, kMaxMaskBlur); v && *v > 0 && r.mask)
      r.mask_blur = static_cast<float>(*v);
    // "Masked content": 0 fill (A1111's API default), 1 original, 2 latent noise, 3 latent nothing.
    constexpr pipeline::MaskedContent kInpaintingFill[] = {
        pipeline::MaskedContent::Fill, pipeline::MaskedContent::Original,
        pipeline::MaskedContent::LatentNoise, pipeline::MaskedContent::LatentNothing};
    if (r.mask)
      r.masked_content = kInpaintingFill[get_int(body, "inpainting_fill", 0, 3).value_or(0)];
    // "Mask mode: Inpaint not masked".
    r.invert_mask = r.mask && get_int(body, "inpainting_mask_invert", 0, 1).value_or(0) == 1;
    // "Inpaint area: Only masked", with its padding (A1111's default 32).
    if (get_flag(body, "inpaint_full_res").value_or(false) && r.mask)
      r.mask_crop_padding = static_cast<int>(
          get_int(body, "inpaint_full_res_padding", 0, kMaxMaskCropPadding).value_or(32));
  }
  return spec;
}

json parse_infotext(const std::string& infotext) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= infotext.size()) {
    const size_t end = infotext.find('\n', start);
    lines.push_back(
        infotext.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  json out = json::object();
  // The last line holds the settings when it reads "Key: value, ..." (A1111 needs three of them).
  std::string settings;
  if (lines.size() > 1 && std::count(lines.back().begin(), lines.back().end(), ':') >= 3) {
    settings = lines.back();
    lines.pop_back();
  }
  std::string prompt, negative;
  bool in_negative = false;
  for (const std::string& line : lines) {
    std::string_view text = line;
    if (text.starts_with("Negative prompt:")) {
      in_negative = true;
      text.remove_prefix(16);
      while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
    }
    std::string& part = in_negative ? negative : prompt;
    if (!part.empty()) part += '\n';
    part += text;
  }
  out["Prompt"] = prompt;
  out["Negative prompt"] = negative;
  // Key: value pairs split at commas outside double quotes; quoted values lose their quotes.
  size_t at = 0;
  while (at < settings.size()) {
    while (at < settings.size() && settings[at] == ' ') ++at;
    const size_t colon = settings.find(':', at);
    if (colon == std::string::npos) break;
    const std::string key = settings.substr(at, colon - at);
    size_t v = colon + 1;
    while (v < settings.size() && settings[v] == ' ') ++v;
    std::string value;
    if (v < settings.size() && settings[v] == '"') {
      size_t q = v + 1;
      while (q < settings.size() && settings[q] != '"') {
        if (settings[q] == '\\' && q + 1 < settings.size()) ++q;
        value += settings[q++];
      }
      at = settings.find(',', q);
    } else {
      const size_t comma = settings.find(',', v);
      value = settings.substr(v, comma == std::string::npos ? std::string::npos : comma - v);
      at = comma;
    }
    out[key] = value;
    if (key == "Size") {
      const size_t x = value.find('x');
      if (x != std::string::npos) {
        out["Size-1"] = value.substr(0, x);
        out["Size-2"] = value.substr(x + 1);
      }
    }
    if (at == std::string::npos) break;
    ++at;
  }
  return out;
}

json png_info(const json& body) {
  const auto image = get_string(body, "image");
  if (!image) bad("image", "required: the picture, base64-encoded");
  const auto bytes = base64_decode(*image);
  if (!bytes) bad("image", "not valid base64");
  io::PngText text;
  try {
    io::decode_image(*bytes, "image");  // a picture at all, or a clear error
    text = io::decode_text(*bytes, "image");
  } catch (const Error& e) {
    bad("image", e.what());
  }
  json items = json::object();
  std::string info;
  for (const auto& [key, value] : text) {
    if (key == "parameters")
      info = value;
    else
      items[key] = value;
  }
  return {{"info", info}, {"items", items}, {"parameters", parse_infotext(info)}};
}

namespace {

// The extras' fields for `images` (the field each came from, and the picture).
JobSpec extras_spec(const json& body, std::vector<std::pair<std::string, io::Image>> images,
                    const RequestLimits& limits, const std::string& default_model) {
  if (default_model.empty()) throw ApiError(404, "", "no models are configured");
  for (const char* field : {"gfpgan_visibility", "codeformer_visibility"})
    if (get_number(body, field, 0, 1).value_or(0) > 0)
      bad(field, "face restoration is not offered");
  // A1111's names: None (Lanczos to the size), Lanczos, Nearest, or a model of the server's.
  const auto upscaler = [&](const std::string& field) {
    UpscaleSpec::Upscaler c;
    c.label = get_string(body, field).value_or("None");
    std::string lower = c.label;
    std::ranges::transform(lower, lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
    if (lower == "nearest")
      c.filter = io::ResampleFilter::Nearest;
    else if (lower != "none" && lower != "lanczos")
      c.model = registry_name(field, c.label);  // the caller checks it exists
    return c;
  };
  UpscaleSpec u;
  u.first = upscaler("upscaler_1");
  // As A1111: a second upscaler named None does nothing, whatever its visibility.
  const float visibility =
      static_cast<float>(get_number(body, "extras_upscaler_2_visibility", 0, 1).value_or(0));
  if (visibility > 0 && get_string(body, "upscaler_2").value_or("None") != "None") {
    u.second = upscaler("upscaler_2");
    u.second_visibility = visibility;
  }
  const auto mode = get_int(body, "resize_mode", 0, 1).value_or(0);
  const double by = get_number(body, "upscaling_resize", 0.01, 8).value_or(2.0);
  if (mode == 1) {
    u.crop_width =
        static_cast<int>(get_int(body, "upscaling_resize_w", 8, 4 * limits.max_side).value_or(512));
    u.crop_height =
        static_cast<int>(get_int(body, "upscaling_resize_h", 8, 4 * limits.max_side).value_or(512));
  }
  for (auto& [field, image] : images) {
    // A1111's Upscaler.upscale: the size the scale gives, rounded down to multiples of 8; a box
    // is covered.
    const double scale = mode == 0 ? by
                                   : std::max(static_cast<double>(u.crop_width) / image.width,
                                              static_cast<double>(u.crop_height) / image.height);
    UpscaleSpec::Picture p{std::move(image), 0, 0};
    p.width = static_cast<int>(p.image.width * scale) / 8 * 8;
    p.height = static_cast<int>(p.image.height * scale) / 8 * 8;
    if (p.width < 8 || p.height < 8 || p.width > 4 * limits.max_side ||
        p.height > 4 * limits.max_side)
      bad(mode == 0 ? "upscaling_resize" : "upscaling_resize_w",
          fmt::format("{} would be {}x{}; this server makes 8 to {} pixels a side", field, p.width,
                      p.height, 4 * limits.max_side));
    u.pictures.push_back(std::move(p));
  }
  if (mode == 1 && !get_flag(body, "upscaling_crop").value_or(true))
    u.crop_width = u.crop_height = 0;
  JobSpec spec;
  spec.model = default_model;  // the queue's model check; an upscale loads none
  spec.upscale = std::move(u);
  return spec;
}

}  // namespace

JobSpec parse_a1111_extras(const json& body, const RequestLimits& limits,
                           const std::string& default_model) {
  const auto it = body.find("image");
  if (it == body.end() || it->is_null()) bad("image", "expected a base64 image to upscale");
  std::vector<std::pair<std::string, io::Image>> images;
  images.emplace_back("image", image_field("image", *it));
  return extras_spec(body, std::move(images), limits, default_model);
}

JobSpec parse_a1111_extras_batch(const json& body, const RequestLimits& limits,
                                 const std::string& default_model) {
  const auto it = body.find("imageList");
  if (it == body.end() || !it->is_array() || it->empty() ||
      it->size() > static_cast<size_t>(limits.max_batch))
    bad("imageList", fmt::format("expected 1 to {} pictures, [{{\"data\": base64, \"name\"}}]",
                                 limits.max_batch));
  std::vector<std::pair<std::string, io::Image>> images;
  for (size_t i = 0; i < it->size(); ++i) {
    const json& item = (*it)[i];
    const std::string field = fmt::format("imageList[{}].data", i);
    if (!item.is_object() || !item.contains("data")) bad(field, "expected a base64 image");
    images.emplace_back(field, image_field(field, item["data"]));
  }
  return extras_spec(body, std::move(images), limits, default_model);
}

JobSpec parse_native_job(const json& body, const RequestLimits& limits,
                         const std::string& default_model) {
  JobSpec spec;
  auto& r = spec.request;
  r.prompt = prompt_field(body, "prompt", true, limits);
  spec.model = model_field(body, "model", default_model);
  spec.loras = loras_field(body, "loras", limits);
  controlnet_fields(body, spec);
  r.width = side_field(body, "width", limits);
  r.height = side_field(body, "height", limits);
  r.batch = static_cast<int>(get_int(body, "n", 1, limits.max_batch).value_or(1));
  sampling_fields(body, "sampler", r);
  common_fields(body, limits, r);
  variation_fields(body, "variation_seed", "variation_strength", r);
  if (const auto it = body.find("init_image"); it != body.end() && !it->is_null())
    r.init_image = image_field("init_image", *it);
  if (const auto it = body.find("mask"); it != body.end() && !it->is_null())
    r.mask = image_field("mask", *it);
  if (const auto it = body.find("reference_images"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxReferenceImages)
      bad("reference_images",
          fmt::format("expected an array of at most {} base64 images", kMaxReferenceImages));
    for (size_t i = 0; i < it->size(); ++i)
      r.reference_images.push_back(image_field(fmt::format("reference_images[{}]", i), (*it)[i]));
  }
  r.strength = get_number(body, "strength", 0, 1);
  if (const auto v = get_number(body, "redux_strength", 0, 4))
    r.redux_strength = static_cast<float>(*v);
  if (r.mask && !r.init_image) bad("mask", "a mask needs init_image (the image to inpaint)");
  outpaint_field(body, "outpaint", r);
  if (const auto mode = get_string(body, "resize_mode"); mode && !mode->empty()) {
    if (!r.init_image) bad("resize_mode", "resizing needs init_image");
    if (*mode == "crop")
      r.resize_mode = pipeline::ResizeMode::Crop;
    else if (*mode == "fill")
      r.resize_mode = pipeline::ResizeMode::Fill;
    else if (*mode != "stretch")
      bad("resize_mode", fmt::format("expected stretch, crop or fill, got \"{}\"", *mode));
  }
  r.seed_per_image = get_flag(body, "seed_per_image").value_or(false);
  if (const auto mode = get_string(body, "dynamic_prompts"); mode && !mode->empty()) {
    using Mode = PromptTemplates::Mode;
    static const std::map<std::string, Mode> kModes = {
        {"off", Mode::Off}, {"random", Mode::Random}, {"combinatorial", Mode::Combinatorial}};
    const auto it = kModes.find(*mode);
    if (it == kModes.end())
      bad("dynamic_prompts",
          fmt::format("expected off, random or combinatorial, got \"{}\"", *mode));
    spec.templates = PromptTemplates{.mode = it->second};
  }
  for (auto [field, flag] :
       {std::pair{"round_mask", &r.round_mask}, std::pair{"overlay_original", &r.overlay_original}})
    if (get_flag(body, field).value_or(false)) {
      if (!r.mask) bad(field, "it shapes inpainting, which needs a mask");
      *flag = true;
    }
  if (get_flag(body, "invert_mask").value_or(false)) {
    if (!r.mask) bad("invert_mask", "inverting the mask needs a mask");
    r.invert_mask = true;
  }
  if (const auto name = get_string(body, "masked_content"); name && !name->empty()) {
    if (!r.mask) bad("masked_content", "what the masked area starts from needs a mask");
    const auto content = pipeline::parse_masked_content(*name);
    if (!content)
      bad("masked_content",
          fmt::format("expected original, fill, latent noise or latent nothing, got \"{}\"",
                      *name));
    r.masked_content = *content;
  }
  if (const auto v = get_number(body, "mask_blur", 0, kMaxMaskBlur)) {
    if (!r.mask) bad("mask_blur", "blurring the mask needs a mask");
    r.mask_blur = static_cast<float>(*v);
  }
  if (const auto v = get_int(body, "mask_crop_padding", 0, kMaxMaskCropPadding)) {
    if (!r.mask) bad("mask_crop_padding", "inpainting only the masked area needs a mask");
    r.mask_crop_padding = static_cast<int>(*v);
  }
  for (const char* key :
       {kZflowHires.scale, kZflowHires.width, kZflowHires.height, kZflowHires.steps,
        kZflowHires.strength, kZflowHires.model, kZflowHires.prompt, kZflowHires.negative_prompt,
        kZflowHires.sampler, kZflowHires.scheduler, kZflowHires.cfg_scale, kZflowHires.guidance})
    if (const auto it = body.find(key);
        it != body.end() && !it->is_null() && !(it->is_string() && it->empty())) {
      hires_fields(body, kZflowHires, limits, spec);
      break;
    }
  spec.format = format_field(body, "output_format");
  if (const auto it = body.find("preview"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean())
      bad("preview", fmt::format("expected true or false, got {}", it->dump()));
    spec.preview = it->get<bool>();
  }
  return spec;
}

}  // namespace zflow::server
