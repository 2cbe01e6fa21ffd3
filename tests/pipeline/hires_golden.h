// The request of a hires-fix golden case (make_hires_fix.py, make_latent_hires_fix.py,
// make_hires_model.py): Z-Image's guidance is its CFG scale, FLUX.1's (family "flux") its
// embedded guidance; the second pass's size, strength, steps, upscaler and, where the case sets
// them, its own prompt, negative prompt, CFG scale and guidance.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "models/upscaler.h"
#include "pipeline/generator.h"
#include "test_util.h"

namespace zflow::test {

inline pipeline::GenerationRequest hires_case_request(const nlohmann::json& c,
                                                      NormalMath normal_math) {
  pipeline::GenerationRequest r;
  r.prompt = c["prompt"];
  r.negative_prompt = c.value("negative_prompt", "");
  r.width = c["width"].get<int>();
  r.height = c["height"].get<int>();
  r.steps = c["steps"].get<int>();
  (c.value("family", "zimage") == "flux" ? r.guidance : r.cfg_scale) = c["guidance"].get<float>();
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  r.normal_math = normal_math;
  pipeline::HiresFix h;
  h.width = c["hires_width"].get<int>();
  h.height = c["hires_height"].get<int>();
  h.strength = c["hires_strength"].get<double>();
  if (c.contains("hires_steps")) h.steps = c["hires_steps"].get<int>();
  if (c.contains("hires_prompt")) h.prompt = c["hires_prompt"].get<std::string>();
  if (c.contains("hires_negative_prompt"))
    h.negative_prompt = c["hires_negative_prompt"].get<std::string>();
  if (c.contains("hires_cfg_scale")) h.cfg_scale = c["hires_cfg_scale"].get<float>();
  if (c.contains("hires_guidance")) h.guidance = c["hires_guidance"].get<float>();
  const std::string upscaler = c["upscaler"];
  if (upscaler == "nearest" || upscaler == "lanczos") {
    h.upscaler = upscaler == "nearest" ? io::ResampleFilter::Nearest : io::ResampleFilter::Lanczos;
  } else if (const auto latent = pipeline::parse_latent_upscale(upscaler)) {
    h.latent_upscaler = latent;
  } else {
    h.upscale_model = models::load_upscaler(fixture(upscaler));
    h.upscale_model_name = "tiny-esrgan";
  }
  r.hires = h;
  return r;
}

}  // namespace zflow::test
