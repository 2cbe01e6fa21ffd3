// What the FLUX.1 pipeline goldens share: the real tokenizers, the tiny dev folder whose text
// encoders and VAE the Fill, Kontext and Canny / Depth folders borrow, and a golden case read as
// a request.
#pragma once

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

#include "golden_cases.h"
#include "image_psnr.h"
#include "io/image.h"
#include "pipeline/flux_pipeline.h"
#include "test_util.h"

namespace zflow::test {

inline std::filesystem::path flux1_tokenizer(const char* sub) {
  return shared_asset(std::string("flux1_tokenizer/") + sub);
}

inline std::filesystem::path flux_tiny_dev() {
  return fixture("flux_pipeline") / "tiny_dev";
}

// A folder holding its own scheduler (and transformer, unless `diffusion_model` says where),
// with tiny_dev's text encoders and VAE.
inline pipeline::FluxFiles flux_files_beside_tiny_dev(const std::filesystem::path& model_dir) {
  return {.model_dir = model_dir,
          .clip = flux_tiny_dev() / "text_encoder",
          .t5 = flux_tiny_dev() / "text_encoder_2",
          .vae = flux_tiny_dev() / "vae",
          .clip_tokenizer = flux1_tokenizer("tokenizer_clip_l"),
          .t5_tokenizer = flux1_tokenizer("tokenizer_t5")};
}

// A golden case as diffusers ran it; its images are files in `dir`.
inline pipeline::FluxRequest flux_request(const nlohmann::json& c, const std::filesystem::path& dir,
                                          const GoldenCases& cases) {
  pipeline::FluxRequest r;
  r.prompt = c["prompt"];
  if (c.contains("prompt_2")) r.prompt_2 = c["prompt_2"].get<std::string>();
  if (c.contains("width")) r.width = c["width"].get<int>();
  if (c.contains("height")) r.height = c["height"].get<int>();
  r.steps = c["steps"].get<int>();
  if (c.contains("guidance")) r.guidance = c["guidance"].get<float>();
  if (c.contains("true_cfg_scale")) r.true_cfg_scale = c["true_cfg_scale"].get<float>();
  if (c.contains("negative_prompt")) r.negative_prompt = c["negative_prompt"].get<std::string>();
  if (c.contains("negative_prompt_2"))
    r.negative_prompt_2 = c["negative_prompt_2"].get<std::string>();
  r.seed = c["seed"].get<uint64_t>();
  r.batch = c.value("num_images", 1);
  if (c.contains("max_sequence_length"))
    r.max_sequence_length = c["max_sequence_length"].get<int>();
  if (c.contains("strength")) r.strength = c["strength"].get<double>();
  const auto image = [&](const char* key) { return io::read_image(dir / c[key]); };
  if (c.contains("init_image")) r.init_image = image("init_image");
  if (c.contains("mask_image")) r.mask = image("mask_image");
  if (c.contains("reference")) r.references = {image("reference")};
  if (c.contains("more_references"))
    for (const auto& name : c["more_references"])
      r.references.push_back(io::read_image(dir / name));
  if (c.contains("redux_strength")) r.redux_strength = c["redux_strength"].get<float>();
  // A control image with its ControlNet settings (make_flux_controlnet_pipeline.py) at `keys`
  // (image, scale, start, end, mode) of `o`.
  const auto control = [&](const nlohmann::json& o, const std::array<const char*, 5>& keys) {
    pipeline::ControlInput one{io::read_image(dir / o[keys[0]]), {}, {}, {}, {}};
    if (o.contains(keys[1])) one.scale = o[keys[1]].get<float>();
    if (o.contains(keys[2])) one.start = o[keys[2]].get<double>();
    if (o.contains(keys[3])) one.end = o[keys[3]].get<double>();
    if (o.contains(keys[4])) one.mode = o[keys[4]].get<int>();
    return one;
  };
  if (c.contains("control_image"))
    r.controls.push_back(
        control(c, {"control_image", "scale", "control_start", "control_end", "mode"}));
  if (c.contains("controls"))
    for (const auto& one : c["controls"])
      r.controls.push_back(control(one, {"image", "scale", "start", "end", "mode"}));
  // torch.randn's float log/sin/cos follow the CPU kernel the fixture was made with.
  r.normal_math = cases.normal_math();
  return r;
}

// A golden fixture folder of one FLUX.1 pipeline: its cases, the pipeline (loaded from `files`
// on first use), and runs held to diffusers' images.
class FluxGolden {
 public:
  FluxGolden(std::filesystem::path dir, const std::string& cases_file, pipeline::FluxFiles files)
      : dir_(std::move(dir)), cases_(dir_ / cases_file), files_(std::move(files)) {}

  const std::filesystem::path& dir() const { return dir_; }
  const pipeline::FluxPipeline& pipeline() const {
    if (!pipe_) pipe_.emplace(pipeline::FluxPipeline::load(files_));
    return *pipe_;
  }
  pipeline::FluxRequest request(const std::string& name) const {
    return flux_request(cases_.find(name), dir_, cases_);
  }
  // Case `name` as diffusers ran it: every image with PSNR >= min_db.
  void check(const std::string& name, double min_db) const {
    expect_images_match(pipeline().generate(request(name)), cases_.find(name)["expected"], dir_,
                        min_db, name);
  }
  // The PSNR of the first image made for `r` (case `name` changed) against the case's first
  // expected image, printed as `what`.
  double psnr_against(const std::string& name, const pipeline::FluxRequest& r,
                      const char* what) const {
    const std::string expected = cases_.find(name)["expected"][0];
    const double db = psnr(pipeline().generate(r).front(), io::read_image(dir_ / expected));
    std::printf("  %s: PSNR %.1f dB\n", what, db);
    return db;
  }

 private:
  std::filesystem::path dir_;
  GoldenCases cases_;
  pipeline::FluxFiles files_;
  mutable std::optional<pipeline::FluxPipeline> pipe_;
};

// A test that skips without the real CLIP-L and T5 tokenizers (../shared/assets).
class FluxTokenizersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ZF_REQUIRE_ASSET(flux1_tokenizer("tokenizer_t5/spiece.model"));
    ZF_REQUIRE_ASSET(flux1_tokenizer("tokenizer_clip_l/vocab.json"));
  }
};

}  // namespace zflow::test
