// Request bodies of the three APIs: fields land in the right place, and each kind of bad input
// is refused with the status and the field named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/image.h"
#include "server/api_request.h"
#include "server/base64.h"
#include "test_util.h"

namespace zflow::server {
namespace {

using nlohmann::json;

const RequestLimits kLimits{};

// The ApiError a parse throws (status and param), or {0, ""} when it does not throw.
template <class F>
std::pair<int, std::string> refusal(F&& parse) {
  try {
    parse();
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find(e.param()), std::string::npos)
        << "the message names the field: " << e.what();
    return {e.status(), e.param()};
  }
  return {0, ""};
}

std::string png_b64(int w, int h) {
  const auto bytes = io::encode_png(io::Image{w, h, std::vector<uint8_t>(size_t(w) * h * 3, 7)});
  return base64_encode(bytes);
}

TEST(OpenAiRequest, MapsTheFields) {
  const JobSpec s = parse_openai_generation(json{{"prompt", "a cat"},
                                                 {"n", 2},
                                                 {"size", "512x768"},
                                                 {"model", "m2"},
                                                 {"output_format", "webp"},
                                                 {"negative_prompt", "blur"},
                                                 {"steps", 9},
                                                 {"seed", 42},
                                                 {"cfg_scale", 2.5},
                                                 {"guidance", 3.5},
                                                 {"sampler", "Euler"},
                                                 {"quality", "high"}},
                                            kLimits, "m1");
  EXPECT_EQ(s.model, "m2");
  EXPECT_EQ(s.request.prompt, "a cat");
  EXPECT_EQ(s.request.batch, 2);
  EXPECT_EQ(s.request.width, 512);
  EXPECT_EQ(s.request.height, 768);
  EXPECT_EQ(s.format, OutputFormat::Webp);
  EXPECT_EQ(s.request.negative_prompt, "blur");
  EXPECT_EQ(s.request.steps, 9);
  EXPECT_EQ(s.request.seed, 42u);
  EXPECT_FLOAT_EQ(*s.request.cfg_scale, 2.5f);
  EXPECT_FLOAT_EQ(*s.request.guidance, 3.5f);

  const JobSpec d = parse_openai_generation(json{{"prompt", "x"}, {"size", "auto"}}, kLimits, "m1");
  EXPECT_EQ(d.model, "m1");
  EXPECT_FALSE(d.request.width);
  EXPECT_FALSE(d.request.steps);
  EXPECT_EQ(d.format, OutputFormat::Png);

  // Seeds as JSON writes them: signed or unsigned integers; negative or null draws one.
  const auto seed = [](json v) {
    return parse_openai_generation({{"prompt", "x"}, {"seed", v}}, kLimits, "m").request.seed;
  };
  EXPECT_EQ(seed(json::parse("0")), 0u);
  EXPECT_EQ(seed(json::parse("18446744073709551615")), 18446744073709551615u);
}

TEST(OpenAiRequest, RefusesBadFieldsByName) {
  const auto parse = [](json body) {
    return refusal([&] { parse_openai_generation(body, kLimits, "m"); });
  };
  using R = std::pair<int, std::string>;
  EXPECT_EQ(parse(json::object()), (R{400, "prompt"}));
  EXPECT_EQ(parse({{"prompt", 3}}), (R{400, "prompt"}));
  EXPECT_EQ(parse({{"prompt", std::string(20000, 'a')}}), (R{400, "prompt"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"n", 0}}), (R{400, "n"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"n", 9}}), (R{400, "n"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"n", "2"}}), (R{400, "n"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"n", 1.5}}), (R{400, "n"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"size", "1000x1000"}}), (R{400, "size"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"size", "4096x1024"}}), (R{400, "size"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"size", "1024*1024"}}), (R{400, "size"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"size", "1024x1024 "}}), (R{400, "size"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"response_format", "url"}}), (R{400, "response_format"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"output_format", "gif"}}), (R{400, "output_format"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"steps", 0}}), (R{400, "steps"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"steps", 10000}}), (R{400, "steps"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"cfg_scale", "high"}}), (R{400, "cfg_scale"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"seed", "7"}}), (R{400, "seed"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"sampler", "DDIM"}}), (R{400, "sampler"}));
  EXPECT_EQ(parse({{"prompt", "x"}, {"scheduler", "sgm_uniform"}}), (R{400, "scheduler"}));
  EXPECT_EQ(refusal([] {
              parse_openai_generation({{"prompt", "x"}}, kLimits, "");
            }),
            (R{404, "model"}));
}

std::string png_bytes(int w, int h, uint8_t value = 7) {
  const auto bytes =
      io::encode_png(io::Image{w, h, std::vector<uint8_t>(size_t(w) * h * 3, value)});
  return {bytes.begin(), bytes.end()};
}

std::string file_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(OpenAiEditRequest, ImagesAreReferencesWithoutAMask) {
  const OpenAiEdit edit{openai_form_fields({{"prompt", "make it blue"},
                                            {"n", "2"},
                                            {"size", "64x48"},
                                            {"seed", "7"},
                                            {"model", "m2"}}),
                        {png_bytes(40, 30), png_bytes(50, 20)},
                        std::nullopt};
  const JobSpec s = parse_openai_edit(edit, kLimits, "m1");
  EXPECT_EQ(s.model, "m2");
  EXPECT_EQ(s.request.batch, 2);
  EXPECT_EQ(s.request.seed, 7u);
  EXPECT_EQ(s.request.width, 64);
  ASSERT_EQ(s.request.reference_images.size(), 2u);
  EXPECT_EQ(s.request.reference_images[1].width, 50);
  EXPECT_FALSE(s.request.init_image);
  EXPECT_FALSE(s.request.mask);
}

// OpenAI's mask marks what to edit with alpha 0; zflow's mask is white there: 255 - alpha
// (png_rgba.png's alpha, as Pillow reads it, is beside it in the fixtures).
TEST(OpenAiEditRequest, AMaskInpaintsTheFirstImage) {
  const std::filesystem::path images = test::fixture("images");
  const std::string mask = file_bytes(images / "png_rgba.png");
  const std::string alpha = file_bytes(images / "png_rgba.alpha");
  const OpenAiEdit edit{openai_form_fields({{"prompt", "123"}, {"strength", "0.5"}}),
                        {png_bytes(37, 23), png_bytes(64, 64)},
                        mask};
  const JobSpec s = parse_openai_edit(edit, kLimits, "m1");
  EXPECT_EQ(s.request.prompt, "123");  // text fields stay text
  ASSERT_TRUE(s.request.init_image && s.request.mask);
  EXPECT_EQ(s.request.init_image->width, 37);
  EXPECT_EQ(s.request.strength, 0.5);
  ASSERT_EQ(s.request.reference_images.size(), 1u);
  ASSERT_EQ(s.request.mask->rgb.size(), 3 * alpha.size());
  for (size_t i = 0; i < alpha.size(); ++i)
    ASSERT_EQ(s.request.mask->rgb[3 * i + 1], 255 - static_cast<uint8_t>(alpha[i])) << i;
  // A mask without alpha is read as a grey mask, white = edit.
  const OpenAiEdit grey{json{{"prompt", "p"}}, {png_bytes(8, 8)}, png_bytes(8, 8, 200)};
  EXPECT_EQ(parse_openai_edit(grey, kLimits, "m1").request.mask->rgb[0], 200);
}

TEST(OpenAiEditRequest, RefusesBadInputByName) {
  const json p = {{"prompt", "p"}};
  auto refused = [&](OpenAiEdit edit) {
    return refusal([&] { parse_openai_edit(edit, kLimits, "m"); });
  };
  EXPECT_EQ(refused({p, {}, std::nullopt}), std::make_pair(400, std::string("image")));
  EXPECT_EQ(refused({p, std::vector<std::string>(5, png_bytes(8, 8)), std::nullopt}),
            std::make_pair(400, std::string("image")));
  EXPECT_EQ(refused({p, {"not an image"}, std::nullopt}),
            std::make_pair(400, std::string("image")));
  EXPECT_EQ(refused({p, {png_bytes(8, 8)}, png_bytes(8, 9)}),
            std::make_pair(400, std::string("mask")));
  EXPECT_EQ(refused({json{{"prompt", "p"}, {"strength", 0.5}}, {png_bytes(8, 8)}, std::nullopt}),
            std::make_pair(400, std::string("strength")));
  EXPECT_EQ(
      refused({json{{"prompt", "p"}, {"response_format", "url"}}, {png_bytes(8, 8)}, std::nullopt}),
      std::make_pair(400, std::string("response_format")));
  EXPECT_EQ(refused({json::object(), {png_bytes(8, 8)}, std::nullopt}),
            std::make_pair(400, std::string("prompt")));
}

// Inpainting only the masked area: A1111's inpaint_full_res (+ padding, default 32) and the
// native mask_crop_padding; only with a mask.
TEST(MaskCropRequest, A1111AndNative) {
  const std::string init = png_b64(32, 32);
  json body = {
      {"prompt", "p"}, {"init_images", {init}}, {"mask", init}, {"inpaint_full_res", true}};
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.mask_crop_padding, 32);
  body["inpaint_full_res_padding"] = 12;
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.mask_crop_padding, 12);
  body["inpaint_full_res"] = 0;  // "Whole picture"
  EXPECT_FALSE(parse_a1111(body, true, kLimits, "m").request.mask_crop_padding);
  body.erase("mask");
  body["inpaint_full_res"] = true;
  EXPECT_FALSE(parse_a1111(body, true, kLimits, "m").request.mask_crop_padding);

  body["mask"] = init;
  body["mask_blur"] = 4;  // A1111's mask blur, softening the mask
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.mask_blur, 4.0f);

  json native = {{"prompt", "p"},
                 {"init_image", init},
                 {"mask", init},
                 {"mask_blur", 2.5},
                 {"mask_crop_padding", 8}};
  EXPECT_EQ(parse_native_job(native, kLimits, "m").request.mask_crop_padding, 8);
  EXPECT_EQ(parse_native_job(native, kLimits, "m").request.mask_blur, 2.5f);
  native.erase("mask");  // both need one: the first refused is named
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("mask_blur")));
  native.erase("mask_blur");
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("mask_crop_padding")));
}

// A1111's inpainting_fill (0 fill, its API's default; 1 original; 2 latent noise; 3 latent
// nothing) and the native masked_content by name; only with a mask.
TEST(MaskedContentRequest, A1111AndNative) {
  using pipeline::MaskedContent;
  const std::string init = png_b64(32, 32);
  json body = {{"prompt", "p"}, {"init_images", {init}}, {"mask", init}};
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.masked_content, MaskedContent::Fill);
  const MaskedContent modes[] = {MaskedContent::Fill, MaskedContent::Original,
                                 MaskedContent::LatentNoise, MaskedContent::LatentNothing};
  for (int k = 0; k < 4; ++k) {
    body["inpainting_fill"] = k;
    EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.masked_content, modes[k]) << k;
  }
  body["resize_mode"] = 1;  // crop and resize
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.resize_mode, pipeline::ResizeMode::Crop);
  body["resize_mode"] = 3;  // latent upscale: refused
  EXPECT_EQ(refusal([&] { parse_a1111(body, true, kLimits, "m"); }),
            std::make_pair(400, std::string("resize_mode")));
  body.erase("resize_mode");
  body["inpainting_mask_invert"] = 1;  // "Inpaint not masked"
  EXPECT_TRUE(parse_a1111(body, true, kLimits, "m").request.invert_mask);
  body.erase("inpainting_mask_invert");
  body["inpainting_fill"] = 4;
  EXPECT_EQ(refusal([&] { parse_a1111(body, true, kLimits, "m"); }),
            std::make_pair(400, std::string("inpainting_fill")));
  body.erase("mask");  // img2img without a mask: nothing to fill
  body["inpainting_fill"] = 0;
  EXPECT_EQ(parse_a1111(body, true, kLimits, "m").request.masked_content, MaskedContent::Original);

  json native = {{"prompt", "p"}, {"init_image", init}, {"mask", init}};
  EXPECT_EQ(parse_native_job(native, kLimits, "m").request.masked_content, MaskedContent::Original);
  native["masked_content"] = "latent noise";
  EXPECT_EQ(parse_native_job(native, kLimits, "m").request.masked_content,
            MaskedContent::LatentNoise);
  native["resize_mode"] = "fill";
  EXPECT_EQ(parse_native_job(native, kLimits, "m").request.resize_mode, pipeline::ResizeMode::Fill);
  native["resize_mode"] = "cover";
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("resize_mode")));
  native.erase("resize_mode");
  native["invert_mask"] = true;
  EXPECT_TRUE(parse_native_job(native, kLimits, "m").request.invert_mask);
  native.erase("invert_mask");
  native["masked_content"] = "noise";
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("masked_content")));
  native["masked_content"] = "fill";
  native.erase("mask");
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("masked_content")));
}

// A1111 inpaints with its mask rounded (mask_round, default true) and the picture laid back over
// the result, so its API does too; native jobs ask for either.
TEST(MaskedContentRequest, A1111RoundsTheMaskAndOverlaysThePicture) {
  const std::string init = png_b64(32, 32);
  json body = {{"prompt", "p"}, {"init_images", {init}}, {"mask", init}};
  pipeline::GenerationRequest r = parse_a1111(body, true, kLimits, "m").request;
  EXPECT_TRUE(r.round_mask);
  EXPECT_TRUE(r.overlay_original);
  body["mask_round"] = false;
  EXPECT_FALSE(parse_a1111(body, true, kLimits, "m").request.round_mask);
  body.erase("mask");
  r = parse_a1111(body, true, kLimits, "m").request;
  EXPECT_FALSE(r.round_mask || r.overlay_original) << "img2img without a mask";

  json native = {{"prompt", "p"}, {"init_image", init}, {"mask", init}};
  EXPECT_FALSE(parse_native_job(native, kLimits, "m").request.overlay_original);
  native["overlay_original"] = true;
  native["round_mask"] = true;
  r = parse_native_job(native, kLimits, "m").request;
  EXPECT_TRUE(r.overlay_original && r.round_mask);
  native.erase("mask");
  EXPECT_EQ(refusal([&] { parse_native_job(native, kLimits, "m"); }),
            std::make_pair(400, std::string("round_mask")));
}

TEST(A1111Request, MapsTxt2imgAndImg2img) {
  const JobSpec t = parse_a1111(json{{"prompt", "p"},
                                     {"negative_prompt", "n"},
                                     {"width", 64},
                                     {"height", 32},
                                     {"steps", 5},
                                     {"cfg_scale", 4},
                                     {"seed", -1},
                                     {"batch_size", 3},
                                     {"n_iter", 1},
                                     {"sampler_name", "Euler"},
                                     {"override_settings", {{"sd_model_checkpoint", "other"}}},
                                     {"distilled_cfg_scale", 3.5}},
                                false, kLimits, "m");
  EXPECT_EQ(t.model, "other");
  EXPECT_EQ(t.request.width, 64);
  EXPECT_EQ(t.request.height, 32);
  EXPECT_EQ(t.request.batch, 3);
  EXPECT_TRUE(t.request.seed_per_image);  // A1111's batches: image k from seed + k
  EXPECT_TRUE(parse_native_job({{"prompt", "p"}, {"seed_per_image", true}}, kLimits, "m")
                  .request.seed_per_image);
  EXPECT_EQ(parse_a1111({{"batch_size", 3}, {"n_iter", 2}}, false, kLimits, "m").request.batch, 6);
  EXPECT_FLOAT_EQ(*t.request.cfg_scale, 4.0f);
  EXPECT_FLOAT_EQ(*t.request.guidance, 3.5f);
  EXPECT_EQ(t.request.sampling, SamplingChoice{});  // "Euler" on the model's schedule
  EXPECT_LT(t.request.seed, uint64_t{1} << 32);     // -1 draws a 32-bit seed
  EXPECT_FALSE(t.request.init_image);

  const JobSpec i = parse_a1111(json{{"prompt", "p"},
                                     {"init_images", {"data:image/png;base64," + png_b64(32, 16)}},
                                     {"mask", png_b64(32, 16)},
                                     {"denoising_strength", 0.4}},
                                true, kLimits, "m");
  ASSERT_TRUE(i.request.init_image);
  EXPECT_EQ(i.request.init_image->width, 32);
  EXPECT_EQ(i.request.init_image->rgb[0], 7);
  ASSERT_TRUE(i.request.mask);
  EXPECT_DOUBLE_EQ(*i.request.strength, 0.4);
}

// The sampler and schedule under every API's names: zflow's and ComfyUI's in the native job,
// A1111's display names, its separate scheduler, and its older sampler names that carried the
// schedule ("DPM++ 2M Karras"), where an explicit scheduler wins.
TEST(A1111Request, ReadsSamplersAndSchedules) {
  const auto sampling = [](json body) {
    return parse_a1111(body, false, kLimits, "m").request.sampling;
  };
  using S = SamplingChoice;
  EXPECT_EQ(sampling({{"sampler_name", "DPM++ 2M"}, {"scheduler", "Karras"}}),
            (S{FlowSampler::kDpmPP2M, SigmaSchedule::kKarras}));
  EXPECT_EQ(sampling({{"sampler_name", "DPM++ 2M Karras"}}),
            (S{FlowSampler::kDpmPP2M, SigmaSchedule::kKarras}));
  EXPECT_EQ(sampling({{"sampler_name", "DPM++ 2M Karras"}, {"scheduler", "beta"}}),
            (S{FlowSampler::kDpmPP2M, SigmaSchedule::kBeta}));
  EXPECT_EQ(sampling({{"sampler_index", "Heun"}, {"scheduler", "Automatic"}}),
            (S{FlowSampler::kHeun, SigmaSchedule::kSimple}));
  EXPECT_EQ(sampling({{"sampler_name", ""}, {"scheduler", ""}}), S{});
  EXPECT_EQ(sampling({{"sampler_name", "Euler a"}}), S{FlowSampler::kEulerAncestral});
  EXPECT_FLOAT_EQ(
      *parse_a1111({{"first_block_cache", 0.1}}, false, kLimits, "m").request.first_block_cache,
      0.1f);
  EXPECT_EQ(refusal([] {
              parse_a1111({{"first_block_cache", 0}}, false, kLimits, "m");
            }),
            (std::pair<int, std::string>{400, "first_block_cache"}));
  EXPECT_EQ(
      parse_native_job({{"prompt", "p"}, {"sampler", "dpmpp_2m"}, {"scheduler", "exponential"}},
                       kLimits, "m")
          .request.sampling,
      (S{FlowSampler::kDpmPP2M, SigmaSchedule::kExponential}));
}

// A1111's variation seed (subseed, subseed_strength; a negative subseed is a random one) and the
// native jobs' variation_seed / variation_strength; strength 0 turns it off.
TEST(A1111Request, ReadsTheVariationSeed) {
  const auto a1111 = [](json body) { return parse_a1111(body, false, kLimits, "m").request; };
  EXPECT_EQ(a1111({{"subseed", 7}, {"subseed_strength", 0.25}}).variation,
            (pipeline::VariationSeed{7, 0.25f}));
  EXPECT_FALSE(a1111({{"subseed", 7}, {"subseed_strength", 0}}).variation.has_value());
  EXPECT_FALSE(a1111({{"subseed", 7}}).variation.has_value());
  EXPECT_TRUE(a1111({{"subseed", -1}, {"subseed_strength", 0.5}}).variation.has_value());
  EXPECT_EQ(refusal([&] {
              a1111({{"subseed_strength", 1.5}});
            }),
            (std::pair<int, std::string>{400, "subseed_strength"}));
  EXPECT_EQ(parse_native_job({{"prompt", "p"}, {"variation_seed", 3}, {"variation_strength", 1}},
                             kLimits, "m")
                .request.variation,
            (pipeline::VariationSeed{3, 1.0f}));
}

// A1111's hires fix (enable_hr with hr_scale or hr_resize_x / _y, hr_second_pass_steps,
// denoising_strength, hr_upscaler) and zflow's hires_* fields; the hires size is held to the
// server's limits, and upscalers zflow does not have are refused by name.
TEST(A1111Request, ReadsTheHiresFix) {
  const auto parse = [](json body) { return parse_a1111(body, false, kLimits, "m").request; };
  const auto r = parse({{"width", 512},
                        {"height", 512},
                        {"enable_hr", true},
                        {"hr_scale", 1.5},
                        {"hr_second_pass_steps", 12},
                        {"denoising_strength", 0.4},
                        {"hr_upscaler", "Nearest"}});
  ASSERT_TRUE(r.hires);
  EXPECT_DOUBLE_EQ(r.hires->scale, 1.5);
  EXPECT_EQ(r.hires->steps, 12);
  EXPECT_DOUBLE_EQ(r.hires->strength, 0.4);
  EXPECT_EQ(r.hires->upscaler, io::ResampleFilter::Nearest);
  EXPECT_FALSE(parse({{"enable_hr", false}, {"hr_scale", 2}}).hires);
  const auto sized = parse({{"enable_hr", 1}, {"hr_resize_x", 1024}});
  ASSERT_TRUE(sized.hires);
  EXPECT_EQ(sized.hires->width, 1024);
  // Absent: A1111's default, the latent upscaler "Latent" (bilinear).
  EXPECT_EQ(sized.hires->latent_upscaler, pipeline::LatentUpscale::Bilinear);
  EXPECT_TRUE(sized.hires->latent_by_default);  // a model without latents takes Lanczos
  EXPECT_EQ(parse({{"enable_hr", true}, {"hr_upscaler", "Latent (bicubic antialiased)"}})
                .hires->latent_upscaler,
            pipeline::LatentUpscale::BicubicAntialiased);
  EXPECT_FALSE(parse({{"enable_hr", true}, {"hr_upscaler", "Lanczos"}}).hires->latent_upscaler);
  using R = std::pair<int, std::string>;
  const auto refusal_of = [](json body) {
    return refusal([&] { parse_a1111(body, false, kLimits, "m"); });
  };
  EXPECT_EQ(refusal_of({{"enable_hr", true}, {"hr_upscaler", "Latent (sharp)"}}),
            (R{400, "hr_upscaler"}));
  EXPECT_EQ(refusal_of({{"width", 1024}, {"height", 1024}, {"enable_hr", true}, {"hr_scale", 4}}),
            (R{400, "hr_resize_x"}));  // 4096 is over --max-size
  EXPECT_EQ(refusal_of({{"enable_hr", true}, {"denoising_strength", 0}}),
            (R{400, "denoising_strength"}));
  const auto native = parse_native_job(
      {{"prompt", "p"}, {"width", 256}, {"height", 256}, {"hires_scale", 2}}, kLimits, "m");
  ASSERT_TRUE(native.request.hires);
  EXPECT_DOUBLE_EQ(native.request.hires->scale, 2.0);
  EXPECT_FALSE(native.request.hires->latent_upscaler);  // zflow's own default: Lanczos
  // Another name is an upscaler model of the server's (the caller checks it exists).
  const JobSpec model =
      parse_a1111({{"enable_hr", true}, {"hr_upscaler", "4x-UltraSharp"}}, false, kLimits, "m");
  EXPECT_EQ(model.upscaler, "4x-UltraSharp");
  EXPECT_EQ(
      parse_native_job({{"prompt", "p"}, {"hires_scale", 2}, {"hires_upscaler", "RealESRGAN"}},
                       kLimits, "m")
          .upscaler,
      "RealESRGAN");
  EXPECT_EQ(
      parse_a1111({{"enable_hr", true}, {"hr_upscaler", "Lanczos"}}, false, kLimits, "m").upscaler,
      "");
}

// The hires fix's second pass on its own terms: A1111's hr_checkpoint_name, hr_prompt,
// hr_negative_prompt, hr_sampler_name and hr_scheduler ("Use same ..." and "" meaning the first
// pass's), and zflow's hires_* names, which also take the CFG scale and guidance and turn the
// hires fix on by themselves.
TEST(A1111Request, ReadsTheHiresSecondPassSettings) {
  const JobSpec a1111 = parse_a1111({{"prompt", "a fox"},
                                     {"enable_hr", true},
                                     {"hr_checkpoint_name", "FLUX.1-dev"},
                                     {"hr_prompt", "a fox, detailed fur"},
                                     {"hr_negative_prompt", ""},
                                     {"hr_sampler_name", "DPM++ 2M Karras"},
                                     {"hr_scheduler", "Use same scheduler"},
                                     {"hr_cfg", 1.0}},
                                    false, kLimits, "m");
  EXPECT_EQ(a1111.hires_model, "FLUX.1-dev");
  const pipeline::HiresFix& h = *a1111.request.hires;
  EXPECT_EQ(h.prompt, "a fox, detailed fur");
  EXPECT_FALSE(h.negative_prompt);
  EXPECT_EQ(h.sampler, FlowSampler::kDpmPP2M);
  EXPECT_EQ(h.schedule, SigmaSchedule::kKarras);
  EXPECT_FALSE(h.cfg_scale) << "Forge's hr_cfg is not read";
  const JobSpec same = parse_a1111({{"enable_hr", true},
                                    {"hr_checkpoint_name", "Use same checkpoint"},
                                    {"hr_sampler_name", "Use same sampler"}},
                                   false, kLimits, "m");
  EXPECT_EQ(same.hires_model, "");
  EXPECT_FALSE(same.request.hires->sampler);
  EXPECT_EQ(refusal([&] {
              parse_a1111({{"enable_hr", true}, {"hr_sampler_name", "DDIM"}}, false, kLimits, "m");
            }),
            (std::pair<int, std::string>{400, "hr_sampler_name"}));

  const JobSpec native = parse_native_job({{"prompt", "p"},
                                           {"hires_model", "Z-Image"},
                                           {"hires_cfg_scale", 4},
                                           {"hires_guidance", 3.5},
                                           {"hires_negative_prompt", "blurry"},
                                           {"hires_scheduler", "beta"}},
                                          kLimits, "m");
  ASSERT_TRUE(native.request.hires) << "a hires_* field alone turns the hires fix on";
  EXPECT_EQ(native.hires_model, "Z-Image");
  EXPECT_EQ(native.request.hires->cfg_scale, 4.0f);
  EXPECT_EQ(native.request.hires->guidance, 3.5f);
  EXPECT_EQ(native.request.hires->negative_prompt, "blurry");
  EXPECT_EQ(native.request.hires->schedule, SigmaSchedule::kBeta);
  EXPECT_EQ(refusal([&] {
              parse_native_job({{"prompt", "p"}, {"hires_cfg_scale", "high"}}, kLimits, "m");
            }),
            (std::pair<int, std::string>{400, "hires_cfg_scale"}));
}

// A1111's extras: the size by scale or to a box (covered, then centred), rounded down to
// multiples of 8 as A1111's Upscaler.upscale does; the upscaler by name.
TEST(A1111Request, ReadsExtrasUpscaling) {
  const std::string png =
      base64_encode(io::encode_png(io::Image{30, 20, std::vector<uint8_t>(1800, 7)}));
  const JobSpec by_scale = parse_a1111_extras(
      {{"image", png}, {"upscaling_resize", 2.5}, {"upscaler_1", "R-ESRGAN 4x+"}}, kLimits, "m");
  ASSERT_TRUE(by_scale.upscale);
  EXPECT_EQ(by_scale.model, "m");
  EXPECT_EQ(by_scale.upscale->first.model, "R-ESRGAN 4x+");
  EXPECT_EQ(by_scale.upscale->second_visibility, 0.0f);
  ASSERT_EQ(by_scale.upscale->pictures.size(), 1u);
  EXPECT_EQ(std::pair(by_scale.upscale->pictures[0].width, by_scale.upscale->pictures[0].height),
            std::pair(72, 48));
  EXPECT_EQ(by_scale.upscale->crop_width, 0);
  const JobSpec boxed = parse_a1111_extras({{"image", png},
                                            {"resize_mode", 1},
                                            {"upscaling_resize_w", 100},
                                            {"upscaling_resize_h", 100},
                                            {"upscaler_1", "Nearest"}},
                                           kLimits, "m");
  ASSERT_TRUE(boxed.upscale);
  EXPECT_EQ(boxed.upscale->first.model, "");
  EXPECT_EQ(boxed.upscale->first.filter, io::ResampleFilter::Nearest);
  // Covering 100 x 100 takes 5x: 150 x 100, rounded down to 144 x 96, centred on 100 x 100.
  EXPECT_EQ(std::pair(boxed.upscale->pictures[0].width, boxed.upscale->pictures[0].height),
            std::pair(144, 96));
  EXPECT_EQ(std::pair(boxed.upscale->crop_width, boxed.upscale->crop_height), std::pair(100, 100));
  using R = std::pair<int, std::string>;
  const auto refusal_of = [](json body) {
    return refusal([&] { parse_a1111_extras(body, kLimits, "m"); });
  };
  EXPECT_EQ(refusal_of(json::object()), (R{400, "image"}));
  EXPECT_EQ(refusal_of({{"image", png}, {"gfpgan_visibility", 0.5}}),
            (R{400, "gfpgan_visibility"}));
  // A second upscaler blended in; named None it does nothing, as in A1111.
  const JobSpec blended = parse_a1111_extras({{"image", png},
                                              {"upscaler_1", "4x-UltraSharp"},
                                              {"upscaler_2", "Nearest"},
                                              {"extras_upscaler_2_visibility", 0.3}},
                                             kLimits, "m");
  EXPECT_EQ(blended.upscale->second.filter, io::ResampleFilter::Nearest);
  EXPECT_EQ(blended.upscale->second.label, "Nearest");
  EXPECT_FLOAT_EQ(blended.upscale->second_visibility, 0.3f);
  EXPECT_EQ(
      parse_a1111_extras({{"image", png}, {"extras_upscaler_2_visibility", 0.3}}, kLimits, "m")
          .upscale->second_visibility,
      0.0f);
  EXPECT_EQ(refusal_of({{"image", png}, {"extras_upscaler_2_visibility", 1.5}}),
            (R{400, "extras_upscaler_2_visibility"}));
  // A batch: each picture its own size.
  const std::string wide =
      base64_encode(io::encode_png(io::Image{40, 10, std::vector<uint8_t>(1200, 7)}));
  const JobSpec batch = parse_a1111_extras_batch(
      {{"imageList", {{{"data", png}, {"name", "a"}}, {{"data", wide}, {"name", "b"}}}}}, kLimits,
      "m");
  ASSERT_TRUE(batch.upscale);
  ASSERT_EQ(batch.upscale->pictures.size(), 2u);
  EXPECT_EQ(batch.upscale->pictures[1].width, 80);
  EXPECT_EQ(batch.upscale->pictures[1].height, 16);  // 20 rounded down to a multiple of 8
  EXPECT_EQ(refusal([] {
              parse_a1111_extras_batch({{"imageList", json::array()}}, kLimits, "m");
            }),
            (R{400, "imageList"}));
  EXPECT_EQ(refusal([] {
              parse_a1111_extras_batch({{"imageList", {{{"data", "%%%"}}}}}, kLimits, "m");
            }),
            (R{400, "imageList[0].data"}));
  RequestLimits small;
  small.max_side = 16;  // outputs up to 64 pixels a side
  EXPECT_EQ(refusal([&] {
              parse_a1111_extras({{"image", png}, {"upscaling_resize", 2.5}}, small, "m");
            }),
            (R{400, "upscaling_resize"}));
}

// A1111's png-info: the parameters text, the other chunks, and the infotext taken apart as A1111
// does (a multi-line prompt, the negative prompt, quoted values with commas, Size-1 / Size-2).
TEST(A1111Request, PngInfoTakesTheInfotextApart) {
  const std::string infotext =
      "a fox\nin snow\nNegative prompt: blurry\nSteps: 8, Sampler: DPM++ 2M, Schedule type: "
      "Karras, Size: 64x48, ControlNet 0: \"Model: union, Weight: 0.7\", Seed: 42";
  const auto png = io::encode_png(io::Image{2, 2, std::vector<uint8_t>(12, 9)},
                                  {{"parameters", infotext}, {"zflow_request", "{\"seed\": 42}"}});
  const json info = png_info({{"image", base64_encode(png)}});
  EXPECT_EQ(info["info"], infotext);
  EXPECT_EQ(info["items"], (json{{"zflow_request", "{\"seed\": 42}"}}));
  const json& p = info["parameters"];
  EXPECT_EQ(p["Prompt"], "a fox\nin snow");
  EXPECT_EQ(p["Negative prompt"], "blurry");
  EXPECT_EQ(p["Steps"], "8");
  EXPECT_EQ(p["Schedule type"], "Karras");
  EXPECT_EQ(p["ControlNet 0"], "Model: union, Weight: 0.7");
  EXPECT_EQ(p["Seed"], "42");
  EXPECT_EQ(p["Size-1"], "64");
  EXPECT_EQ(p["Size-2"], "48");
  EXPECT_EQ(parse_infotext("just a prompt")["Prompt"], "just a prompt");
  using R = std::pair<int, std::string>;
  EXPECT_EQ(refusal([] { png_info(json::object()); }), (R{400, "image"}));
  EXPECT_EQ(refusal([] {
              png_info({{"image", base64_encode(std::string_view("no picture"))}});
            }),
            (R{400, "image"}));
}

TEST(A1111Request, RefusesBadFieldsByName) {
  using R = std::pair<int, std::string>;
  const auto parse = [](json body, bool img2img) {
    return refusal([&] { parse_a1111(body, img2img, kLimits, "m"); });
  };
  EXPECT_EQ(parse({{"width", 100}}, false), (R{400, "width"}));
  EXPECT_EQ(parse({{"height", 0}}, false), (R{400, "height"}));
  EXPECT_EQ(parse({{"n_iter", 5}, {"batch_size", 2}}, false), (R{400, "n_iter"}));  // over 8
  EXPECT_EQ(parse({{"sampler_name", "DDIM"}}, false), (R{400, "sampler_name"}));
  EXPECT_EQ(parse({{"sampler_name", "DPM++ 2M Uniform"}}, false), (R{400, "sampler_name"}));
  EXPECT_EQ(parse({{"scheduler", "Align Your Steps"}}, false), (R{400, "scheduler"}));
  EXPECT_EQ(parse({{"override_settings", 5}}, false), (R{400, "override_settings"}));
  EXPECT_EQ(parse({{"prompt", "p"}}, true), (R{400, "init_images"}));
  EXPECT_EQ(parse({{"init_images", {"%%%"}}}, true), (R{400, "init_images[0]"}));
  EXPECT_EQ(parse({{"init_images", {base64_encode(std::string_view("not an image"))}}}, true),
            (R{400, "init_images[0]"}));
  EXPECT_EQ(parse({{"init_images", {png_b64(16, 16)}}, {"denoising_strength", 2}}, true),
            (R{400, "denoising_strength"}));
  // What would change the picture in a way zflow does not offer is refused, not ignored; at the
  // defaults clients send, it passes.
  EXPECT_EQ(parse({{"restore_faces", true}}, false), (R{400, "restore_faces"}));
  EXPECT_EQ(parse({{"tiling", true}}, false), (R{400, "tiling"}));
  EXPECT_EQ(parse({{"refiner_checkpoint", "FLUX.1-dev"}}, false), (R{400, "refiner_checkpoint"}));
  EXPECT_EQ(parse({{"script_name", "x/y/z plot"}}, false), (R{400, "script_name"}));
  EXPECT_EQ(parse({{"seed_resize_from_w", 512}, {"seed_resize_from_h", 512}}, false),
            (R{400, "seed_resize_from_w"}));
  EXPECT_NO_THROW(parse_a1111({{"restore_faces", false},
                               {"tiling", false},
                               {"refiner_checkpoint", nullptr},
                               {"refiner_switch_at", 0.8},
                               {"script_name", ""},
                               {"seed_resize_from_w", -1},
                               {"seed_resize_from_h", 0}},
                              false, kLimits, "m"));
}

// Every API takes "loras" by name and scale; A1111 also takes its prompt tags, which leave the
// prompt. Names are not checked here (the server does, against its LoRA folder).
TEST(LoraRequest, FieldsAndA1111PromptTags) {
  const json loras = json::array({{{"name", "ink"}, {"scale", 0.5}}, {{"name", "style"}}});
  const std::vector<LoraChoice> want = {{"ink", 0.5f}, {"style", 1.0f}};
  EXPECT_EQ(parse_openai_generation(json{{"prompt", "p"}, {"loras", loras}}, kLimits, "m").loras,
            want);
  EXPECT_EQ(parse_native_job(json{{"prompt", "p"}, {"loras", loras}}, kLimits, "m").loras, want);

  const JobSpec a = parse_a1111(
      json{{"prompt", "a cat <lora:ink:0.5>, snow<lora:style>"}, {"loras", {{{"name", "first"}}}}},
      false, kLimits, "m");
  EXPECT_EQ(a.request.prompt, "a cat , snow");
  EXPECT_EQ(a.loras, (std::vector<LoraChoice>{{"first", 1.0f}, {"ink", 0.5f}, {"style", 1.0f}}));

  using R = std::pair<int, std::string>;
  const auto native = [](json l) {
    return refusal([&] { parse_native_job(json{{"prompt", "p"}, {"loras", l}}, kLimits, "m"); });
  };
  EXPECT_EQ(native("ink"), (R{400, "loras"}));
  EXPECT_EQ(native(json::array({5})), (R{400, "loras[0]"}));
  EXPECT_EQ(native(json::array({{{"scale", 1}}})), (R{400, "loras[0].name"}));
  EXPECT_EQ(native(json::array({{{"name", "ink"}, {"scale", 20}}})), (R{400, "loras[0].scale"}));
  EXPECT_EQ(native(json::array({{{"name", "ink"}, {"scale", "high"}}})),
            (R{400, "loras[0].scale"}));
  json nine = json::array();
  for (int i = 0; i < 9; ++i) nine.push_back({{"name", "l" + std::to_string(i)}});
  EXPECT_EQ(native(nine), (R{400, "loras[8]"}));
  const auto a1111 = [](const std::string& prompt) {
    return refusal([&] { parse_a1111(json{{"prompt", prompt}}, false, kLimits, "m"); });
  };
  EXPECT_EQ(a1111("<lora:ink:lots>"), (R{400, "prompt"}));
  EXPECT_EQ(a1111("<lora:ink:0.5"), (R{400, "prompt"}));
  EXPECT_EQ(a1111("<lora::0.5>"), (R{400, "prompt"}));
}

// A ControlNet by name with its control image: zflow's fields on the native and OpenAI APIs, the
// ControlNet extension's units on A1111's (several of one model: a FLUX.1 ControlNet reads several
// controls; "controls" on the native API; units of several models, or the native API's array of
// names, run them side by side); a name without an image, a preprocessor, or a model named twice
// among several are refused naming the field. An image alone is FLUX.1 Canny / Depth's input.
TEST(ControlNetRequest, EveryApiTakesOne) {
  const json fields = {
      {"prompt", "p"},          {"controlnet", "canny"}, {"control_image", png_b64(32, 16)},
      {"control_scale", 0.6},   {"control_start", 0.1},  {"control_end", 0.8},
      {"control_mode", "depth"}};
  for (const JobSpec& s :
       {parse_native_job(fields, kLimits, "m"), parse_openai_generation(fields, kLimits, "m")}) {
    EXPECT_EQ(s.controlnets, std::vector<std::string>{"canny"});
    ASSERT_EQ(s.request.controls.size(), 1u);
    const pipeline::ControlInput& c = s.request.controls[0];
    EXPECT_EQ(c.image.width, 32);
    EXPECT_FLOAT_EQ(c.scale.value_or(0), 0.6f);
    EXPECT_EQ(c.start, 0.1);
    EXPECT_EQ(c.end, 0.8);
    EXPECT_EQ(c.mode, 2);  // InstantX's table
  }
  const json unit = {{"enabled", true},          {"module", "none"}, {"model", "canny [a1b2c3d4]"},
                     {"image", png_b64(16, 16)}, {"weight", 0.8},    {"guidance_start", 0.2},
                     {"guidance_end", 0.9}};
  const JobSpec a =
      parse_a1111(json{{"prompt", "p"},
                       {"alwayson_scripts",
                        {{"controlnet", {{"args", json::array({{{"enabled", false}}, unit})}}}}}},
                  false, kLimits, "m");
  EXPECT_EQ(a.controlnets, std::vector<std::string>{"canny"});
  ASSERT_EQ(a.request.controls.size(), 1u);
  EXPECT_FLOAT_EQ(a.request.controls[0].scale.value_or(0), 0.8f);
  EXPECT_EQ(a.request.controls[0].start, 0.2);
  EXPECT_EQ(a.request.controls[0].end, 0.9);
  json plain = unit;
  plain.erase("weight");
  const JobSpec two = parse_a1111(
      json{{"prompt", "p"},
           {"alwayson_scripts", {{"controlnet", {{"args", json::array({unit, plain})}}}}}},
      false, kLimits, "m");
  ASSERT_EQ(two.request.controls.size(), 2u);
  EXPECT_FLOAT_EQ(two.request.controls[1].scale.value_or(0), 1.0f);  // the extension's default
  const JobSpec several = parse_native_job(
      json{
          {"prompt", "p"},
          {"controlnet", "union"},
          {"controls", json::array({{{"image", png_b64(16, 16)}, {"mode", "canny"}, {"scale", 0.5}},
                                    {{"image", png_b64(16, 16)}, {"mode", 2}, {"end", 0.6}}})}},
      kLimits, "m");
  ASSERT_EQ(several.request.controls.size(), 2u);
  EXPECT_EQ(several.request.controls[0].mode, 0);
  EXPECT_EQ(several.request.controls[1].mode, 2);
  EXPECT_EQ(several.request.controls[1].end, 0.6);

  using R = std::pair<int, std::string>;
  const auto native = [](json body) {
    body["prompt"] = "p";
    return refusal([&] { parse_native_job(body, kLimits, "m"); });
  };
  EXPECT_EQ(native({{"controlnet", "canny"}}), (R{400, "control_image"}));
  const JobSpec image_only =
      parse_native_job(json{{"prompt", "p"}, {"control_image", png_b64(16, 16)}}, kLimits, "m");
  EXPECT_TRUE(image_only.controlnets.empty());
  EXPECT_EQ(image_only.request.controls.size(), 1u);
  EXPECT_EQ(native({{"controlnet", ""}, {"control_image", png_b64(16, 16)}}),
            (R{400, "controlnet"}));
  EXPECT_EQ(native({{"controlnet", "c"}, {"control_image", png_b64(16, 16)}, {"control_scale", 3}}),
            (R{400, "control_scale"}));
  EXPECT_EQ(native({{"controlnet", "c"}, {"control_image", png_b64(16, 16)}, {"control_end", 2}}),
            (R{400, "control_end"}));
  EXPECT_EQ(
      native(
          {{"controlnet", "c"}, {"control_image", png_b64(16, 16)}, {"control_mode", "scribble"}}),
      (R{400, "control_mode"}));
  EXPECT_EQ(native({{"controlnet", "c"}, {"control_image", png_b64(16, 16)}, {"control_mode", 1}}),
            (R{0, ""}));
  const auto a1111 = [](const json& args) {
    return refusal([&] {
      parse_a1111(json{{"prompt", "p"}, {"alwayson_scripts", {{"controlnet", {{"args", args}}}}}},
                  false, kLimits, "m");
    });
  };
  json canny = unit;
  canny["module"] = "canny";
  EXPECT_EQ(a1111(json::array({canny})), (R{400, "alwayson_scripts.controlnet.args[0].module"}));
  // Units of two models run them side by side, one unit each; naming one of them twice is refused.
  json depth = unit;
  depth["model"] = "depth";
  const JobSpec side_by_side = parse_a1111(
      json{{"prompt", "p"},
           {"alwayson_scripts", {{"controlnet", {{"args", json::array({unit, depth})}}}}}},
      false, kLimits, "m");
  EXPECT_EQ(side_by_side.controlnets, (std::vector<std::string>{"canny", "depth"}));
  EXPECT_EQ(side_by_side.request.controls.size(), 2u);
  EXPECT_EQ(a1111(json::array({unit, depth, unit})), (R{400, "alwayson_scripts.controlnet.args"}));
  EXPECT_EQ(parse_native_job(json{{"prompt", "p"},
                                  {"controlnet", json::array({"union", "plain"})},
                                  {"controls", json::array({{{"image", png_b64(16, 16)}},
                                                            {{"image", png_b64(16, 16)}}})}},
                             kLimits, "m")
                .controlnets,
            (std::vector<std::string>{"union", "plain"}));
  EXPECT_EQ(native({{"controlnet", json::array()}, {"control_image", png_b64(16, 16)}}),
            (R{400, "controlnet"}));
  EXPECT_EQ(native({{"controlnet", json::array({"a", 5})}, {"control_image", png_b64(16, 16)}}),
            (R{400, "controlnet[1]"}));
  EXPECT_EQ(native({{"controlnet", "c"},
                    {"control_image", png_b64(16, 16)},
                    {"controls", json::array({{{"image", png_b64(16, 16)}}})}}),
            (R{400, "controls"}));
  EXPECT_EQ(native({{"controlnet", "c"}, {"controls", json::array({{{"scale", 1}}})}}),
            (R{400, "controls[0].image"}));
  json no_image = unit;
  no_image.erase("image");
  EXPECT_EQ(a1111(json::array({no_image})), (R{400, "alwayson_scripts.controlnet.args[0].image"}));
}

TEST(NativeRequest, MapsAndRefuses) {
  const JobSpec j = parse_native_job(json{{"prompt", "p"},
                                          {"width", 48},
                                          {"height", 16},
                                          {"n", 2},
                                          {"shift", 3},
                                          {"init_image", png_b64(48, 16)},
                                          {"strength", 0.5},
                                          {"output_format", "jpeg"}},
                                     kLimits, "m");
  EXPECT_EQ(j.request.width, 48);
  EXPECT_EQ(j.request.batch, 2);
  EXPECT_DOUBLE_EQ(*j.request.shift, 3.0);
  EXPECT_EQ(j.format, OutputFormat::Jpeg);
  ASSERT_TRUE(j.request.init_image);

  using R = std::pair<int, std::string>;
  EXPECT_EQ(refusal([] {
              parse_native_job({{"prompt", "p"}, {"mask", png_b64(16, 16)}}, kLimits, "m");
            }),
            (R{400, "mask"}));
  // FLUX.2 klein's reference images: base64 images, at most four.
  const JobSpec edit = parse_native_job(
      json{{"prompt", "p"}, {"reference_images", json::array({png_b64(64, 64), png_b64(80, 64)})}},
      kLimits, "m");
  ASSERT_EQ(edit.request.reference_images.size(), 2u);
  EXPECT_EQ(edit.request.reference_images[1].width, 80);
  EXPECT_EQ(refusal([] {
              parse_native_job({{"prompt", "p"}, {"reference_images", json::array({"not base64"})}},
                               kLimits, "m");
            }).second,
            "reference_images[0]");
  EXPECT_EQ(refusal([] {
              parse_native_job(
                  {{"prompt", "p"}, {"reference_images", json::array({1, 2, 3, 4, 5})}}, kLimits,
                  "m");
            }),
            (R{400, "reference_images"}));
  // FLUX.1 Redux's strength: 0..4.
  const JobSpec redux = parse_native_job(json{{"prompt", "p"},
                                              {"reference_images", json::array({png_b64(16, 16)})},
                                              {"redux_strength", 0.3}},
                                         kLimits, "m");
  EXPECT_FLOAT_EQ(redux.request.redux_strength.value_or(0), 0.3f);
  EXPECT_EQ(refusal([] {
              parse_native_job({{"prompt", "p"}, {"redux_strength", 9}}, kLimits, "m");
            }),
            (R{400, "redux_strength"}));
  EXPECT_EQ(refusal([] { parse_json_object("{\"prompt\": "); }), (R{400, ""}));
  EXPECT_EQ(refusal([] { parse_json_object("[1, 2]"); }), (R{400, ""}));
}

}  // namespace
}  // namespace zflow::server
