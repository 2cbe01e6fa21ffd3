// The HTTP server end to end in-process, over fake models: every route of the three APIs, the
// events stream, and the promised refusals (400/401/404/409/413/422/429) with JSON bodies.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "fake_generator.h"
#include "io/image.h"
#include "io/image_blend.h"
#include "io/image_resize.h"
#include "pipeline/hires_fix.h"
#include "pipeline/image_psnr.h"
#include "pipeline/seed_per_image.h"
#include "server/base64.h"
#include "server/http_server.h"
#include "test_util.h"
#include "text/wildcard_folder.h"

namespace zflow::server {
namespace {

using nlohmann::json;

class HttpServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    std::vector<ModelEntry> entries = {{"fake-a", {.model_dir = "a"}, 1},
                                       {"fake-b", {.model_dir = "b"}, 1},
                                       {"fake-broken", {.model_dir = "broken"}, 1}};
    registry_ = std::make_unique<ModelRegistry>(
        entries, 0,
        [this](const pipeline::ModelFiles& f) -> std::unique_ptr<pipeline::ImageGenerator> {
          if (f.model_dir == "broken") fail("[fake] broken/transformer: file is truncated");
          loaded_files_.push_back(f);
          // As load_generator: the hires fix and A1111's seeds per image around the model.
          return pipeline::with_hires_fix(pipeline::with_seed_per_image(
              std::make_unique<test::FakeGenerator>("fake-" + f.model_dir.string(), gate_)));
        },
        std::vector<LoraEntry>{{"ink", "/loras/ink.safetensors"}},
        std::vector<LoraEntry>{{"canny", "/controlnets/canny.safetensors"}});
    registry_->set_upscalers(
        {{"tiny-4x", zflow::test::fixture("esrgan/esrgan_x4_basicsr.safetensors")},
         {"compact-2x", zflow::test::fixture("compact_upscaler/compact_x2.safetensors")},
         {"not-an-upscaler", zflow::test::fixture("lora/flux_lora_bfl.safetensors")}},
        Device::CPU);
    options.port = 0;
    server_ = std::make_unique<ApiServer>(options, *registry_);
    port_ = server_->bind();
    thread_ = std::thread([this] { server_->serve(); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(20, 0);
  }
  void TearDown() override {
    gate_.release();
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
  }

  // POST/GET returning (status, parsed JSON body).
  std::pair<int, json> post(const std::string& path, const std::string& body,
                            const httplib::Headers& headers = {}) {
    const auto res = client_->Post(path.c_str(), headers, body, "application/json");
    EXPECT_TRUE(res) << path;
    return {res ? res->status : 0, res ? json::parse(res->body, nullptr, false) : json()};
  }
  std::pair<int, json> get(const std::string& path, const httplib::Headers& headers = {}) {
    const auto res = client_->Get(path.c_str(), headers);
    EXPECT_TRUE(res) << path;
    return {res ? res->status : 0, res ? json::parse(res->body, nullptr, false) : json()};
  }

  // The job's status once it is `state` (waiting up to 5 s).
  json job_when(const std::string& id, const char* state) {
    for (int i = 0; i < 500 && get("/v1/jobs/" + id).second["state"] != state; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return get("/v1/jobs/" + id).second;
  }

  static io::Image decode(const std::string& b64) {
    const auto bytes = base64_decode(b64);
    EXPECT_TRUE(bytes);
    return io::decode_image(*bytes, "response");
  }

  test::FakeGate gate_;
  std::vector<pipeline::ModelFiles> loaded_files_;  // what the registry loaded, in order
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<ApiServer> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(HttpServerTest, OpenAiGenerationsAndModels) {
  start();
  const auto [status, body] = post("/v1/images/generations",
                                   R"({"prompt": "a red cube", "n": 2, "size": "48x32",
                                       "seed": 7, "model": "fake-b"})");
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["data"].size(), 2u);
  const io::Image image = decode(body["data"][0]["b64_json"]);
  EXPECT_EQ(image.width, 48);
  EXPECT_EQ(image.height, 32);
  EXPECT_EQ(image.rgb[0], 7);  // the fake paints seed % 251
  EXPECT_EQ(body["data"][1]["seed"], 7);
  EXPECT_EQ(body["output_format"], "png");

  const auto [ms, models] = get("/v1/models");
  EXPECT_EQ(ms, 200);
  ASSERT_EQ(models["data"].size(), 3u);
  EXPECT_EQ(models["data"][0]["id"], "fake-a");
  EXPECT_EQ(models["data"][0]["loaded"], false);
  EXPECT_EQ(models["data"][1]["loaded"], true);

  const auto jpeg = post("/v1/images/generations",
                         R"({"prompt": "x", "size": "16x16", "output_format": "jpeg"})");
  ASSERT_EQ(jpeg.first, 200);
  const auto bytes = *base64_decode(jpeg.second["data"][0]["b64_json"].get<std::string>());
  EXPECT_EQ(io::detect_image_format(bytes), io::ImageFormat::JPEG);
}

// /v1/images/edits as OpenAI's SDKs send it (multipart: files and text fields) and as JSON. The
// fake inpaints at the init image's size, so the mask path shows in the answer's size.
TEST_F(HttpServerTest, OpenAiEdits) {
  start();
  auto png = [](int w, int h, uint8_t v) {
    const auto bytes = io::encode_png(io::Image{w, h, std::vector<uint8_t>(size_t(w) * h * 3, v)});
    return std::string(bytes.begin(), bytes.end());
  };
  const httplib::MultipartFormDataItems form = {{"image[]", png(40, 24, 9), "a.png", "image/png"},
                                                {"image[]", png(16, 16, 9), "b.png", "image/png"},
                                                {"mask", png(40, 24, 255), "mask.png", "image/png"},
                                                {"prompt", "paint it blue", "", ""},
                                                {"n", "2", "", ""},
                                                {"seed", "5", "", ""}};
  const auto res = client_->Post("/v1/images/edits", form);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(decode(body["data"][0]["b64_json"]).width, 40);
  EXPECT_EQ(body["data"][0]["seed"], 5);

  // JSON with base64 images and no mask: reference images, the size asked for.
  const std::string small = png(8, 8, 1);
  const std::string b64 = base64_encode(std::vector<uint8_t>(small.begin(), small.end()));
  const auto [status, edited] =
      post("/v1/images/edits", json{{"prompt", "p"}, {"image", {b64}}, {"size", "48x32"}}.dump());
  ASSERT_EQ(status, 200) << edited.dump();
  EXPECT_EQ(decode(edited["data"][0]["b64_json"]).width, 48);

  const auto [bad, error] = post("/v1/images/edits", json{{"prompt", "p"}}.dump());
  EXPECT_EQ(bad, 400);
  EXPECT_EQ(error["error"]["param"], "image");
}

TEST_F(HttpServerTest, A1111Api) {
  start();
  auto [status, body] = post("/sdapi/v1/txt2img",
                             R"({"prompt": "p", "width": 32, "height": 16, "steps": 4,
                                 "seed": 9, "batch_size": 2, "sampler_name": "Euler"})");
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["images"].size(), 2u);
  EXPECT_EQ(decode(body["images"][1]).width, 32);
  EXPECT_EQ(body["parameters"]["seed"], 9);
  const json info = json::parse(body["info"].get<std::string>());
  EXPECT_EQ(info["all_seeds"], json::array({9, 10}));  // A1111's: image k from seed + k
  EXPECT_EQ(decode(body["images"][1]).rgb[0], 10);     // the fake paints seed % 251
  EXPECT_EQ(info["steps"], 4);
  EXPECT_EQ(info["sd_model_name"], "fake-a");
  // png-info reads the picture's parameters back (the fake model records them too).
  const auto [png_status, png] =
      post("/sdapi/v1/png-info", json{{"image", body["images"][0]}}.dump());
  ASSERT_EQ(png_status, 200) << png.dump();
  EXPECT_EQ(png["info"], info["infotexts"][0]);
  EXPECT_EQ(post("/sdapi/v1/png-info", R"({"image": "%%%"})").first, 400);

  const std::string init =
      base64_encode(io::encode_png(io::Image{16, 16, std::vector<uint8_t>(16 * 16 * 3, 200)}));
  std::tie(status, body) =
      post("/sdapi/v1/img2img",
           json{{"prompt", "p"}, {"init_images", {init}}, {"denoising_strength", 0.5}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(body["parameters"].count("init_images"), 0u);

  EXPECT_EQ(get("/sdapi/v1/options").second["sd_model_checkpoint"], "fake-a");
  EXPECT_EQ(post("/sdapi/v1/options", R"({"sd_model_checkpoint": "fake-b"})").first, 200);
  EXPECT_EQ(get("/sdapi/v1/options").second["sd_model_checkpoint"], "fake-b");
  EXPECT_EQ(post("/sdapi/v1/options", R"({"sd_model_checkpoint": "nope"})").first, 404);
  EXPECT_EQ(get("/sdapi/v1/sd-models").second.size(), 3u);
  const json samplers = get("/sdapi/v1/samplers").second;
  ASSERT_EQ(samplers.size(), std::size(kFlowSamplers));
  EXPECT_EQ(samplers[0]["name"], "Euler");
  EXPECT_EQ(samplers[2]["name"], "DPM++ 2M");
  const json schedules = get("/sdapi/v1/schedulers").second;
  ASSERT_EQ(schedules.size(), 4u);
  EXPECT_EQ(schedules[1]["label"], "Karras");
  EXPECT_EQ(get("/sdapi/v1/progress").second["progress"], 0.0);

  // What clients list on connecting, which zflow has none of.
  for (const char* path :
       {"/sdapi/v1/sd-vae", "/sdapi/v1/face-restorers", "/sdapi/v1/prompt-styles"})
    EXPECT_EQ(get(path), (std::pair{200, json::array()})) << path;
  EXPECT_EQ(get("/sdapi/v1/embeddings").second,
            (json{{"loaded", json::object()}, {"skipped", json::object()}}));
  // unload-checkpoint lets go of the idle models; the next request loads its own again.
  EXPECT_EQ(registry_->loaded(), (std::vector<std::string>{"fake-a"}));
  EXPECT_EQ(post("/sdapi/v1/unload-checkpoint", "").first, 200);
  EXPECT_TRUE(registry_->loaded().empty());
  EXPECT_EQ(post("/sdapi/v1/txt2img", R"({"prompt": "p", "width": 16, "height": 16})").first, 200);
  EXPECT_EQ(registry_->loaded(), (std::vector<std::string>{"fake-b"}));
  // The always-on scripts whose entries zflow reads, as clients look for them.
  EXPECT_EQ(get("/sdapi/v1/scripts").second,
            (json{{"txt2img", json::array()}, {"img2img", json::array()}}));
  const json scripts = get("/sdapi/v1/script-info").second;
  ASSERT_EQ(scripts.size(), 4u);
  EXPECT_EQ(scripts[2]["name"], "dynamic prompts v2.17.1");
  EXPECT_EQ(scripts[2]["is_alwayson"], true);
  EXPECT_EQ(get("/controlnet/version").second["version"], 2);
  // send_images false answers the info alone.
  std::tie(status, body) = post(
      "/sdapi/v1/txt2img", R"({"prompt": "p", "width": 16, "height": 16, "send_images": false})");
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_TRUE(body["images"].empty());
  EXPECT_EQ(json::parse(body["info"].get<std::string>())["all_seeds"].size(), 1u);
  EXPECT_EQ(post("/sdapi/v1/txt2img", R"({"prompt": "p", "send_images": "no"})").first, 400);
}

// Dynamic Prompts templates as A1111 with the extension installed runs them: by the server's
// default (--dynamic-prompts) each image k's prompt drawn from seed + k with the server's
// wildcards (dynamicprompts' picks, random_prompts_cases.json), `info` listing them and each
// infotext beginning with its own; the prompt itself stays the template. A request turns it off
// in alwayson_scripts; a native job asks by name.
TEST_F(HttpServerTest, DynamicPromptsAsTheA1111Extension) {
  ServerOptions options;
  options.prompt_templates = PromptTemplates{};
  options.wildcards = text::wildcard_folder(zflow::test::fixture("dynamic_prompts/wildcards"));
  start(options);
  std::ifstream in(zflow::test::fixture("dynamic_prompts/random_prompts_cases.json"));
  const json golden = json::parse(in);
  const json& c = golden["cases"][19];  // "a __product/material__ cup __setting__"
  ASSERT_EQ(c["template"], "a __product/material__ cup __setting__");
  auto [status, body] = post(
      "/sdapi/v1/txt2img",
      json{{"prompt", c["template"]}, {"width", 16}, {"height", 16}, {"seed", 1}, {"batch_size", 3}}
          .dump());
  ASSERT_EQ(status, 200) << body.dump();
  const json info = json::parse(body["info"].get<std::string>());
  EXPECT_EQ(info["prompt"], c["template"]);
  EXPECT_EQ(info["all_seeds"], json::array({1, 2, 3}));
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(info["all_prompts"][k], c["expected"][1 + k]) << k;
    EXPECT_TRUE(info["infotexts"][k].get<std::string>().starts_with(
        c["expected"][1 + k].get<std::string>() + "\n"))
        << info["infotexts"][k];
  }

  std::tie(status, body) =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "a {red|blue} fox"},
                {"width", 16},
                {"height", 16},
                {"alwayson_scripts", {{"dynamic prompts v2.17.1", {{"args", {false}}}}}}}
               .dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(json::parse(body["info"].get<std::string>())["all_prompts"][0], "a {red|blue} fox");

  std::tie(status, body) = post("/v1/jobs", json{{"prompt", "a {red|blue} {fox|owl}"},
                                                 {"width", 16},
                                                 {"height", 16},
                                                 {"dynamic_prompts", "combinatorial"}}
                                                .dump());
  ASSERT_EQ(status, 202) << body.dump();
  const json result = job_when(body["id"], "completed");
  ASSERT_EQ(result["images"].size(), 4u) << result.dump();
  EXPECT_EQ(result["images"][3]["request"]["prompt"], "a blue owl");
  EXPECT_EQ(post("/sdapi/v1/txt2img", R"({"prompt": "a {red|blue fox"})").first, 400);
}

// A1111's prompt styles from the server's styles.csv: listed, added to the prompts of A1111
// requests and jobs that name them, in order (text/prompt_styles.h checks the merging); `info`
// keeps the prompt as sent and lists the styled ones; an unknown name is a 400 naming it.
TEST_F(HttpServerTest, PromptStylesByName) {
  ServerOptions options;
  options.styles = text::read_prompt_styles(zflow::test::fixture("prompt_styles/styles.csv"));
  start(options);
  const json listed = get("/sdapi/v1/prompt-styles").second;
  ASSERT_EQ(listed.size(), options.styles.size());
  EXPECT_EQ(listed[0],
            (json{{"name", "Cinematic"},
                  {"prompt", "cinematic still of {prompt}, shallow depth of field, film grain"},
                  {"negative_prompt", "cartoon, drawing"}}));
  auto [status, body] = post("/sdapi/v1/txt2img", json{{"prompt", "a red mug"},
                                                       {"negative_prompt", "blurry"},
                                                       {"styles", {"Cinematic", "Product"}},
                                                       {"width", 16},
                                                       {"height", 16}}
                                                      .dump());
  ASSERT_EQ(status, 200) << body.dump();
  const json info = json::parse(body["info"].get<std::string>());
  EXPECT_EQ(info["prompt"], "a red mug");
  EXPECT_EQ(info["all_prompts"][0],
            "cinematic still of a red mug, shallow depth of field, film grain, studio lighting");
  EXPECT_EQ(info["all_negative_prompts"][0], "blurry, cartoon, drawing, white background");
  EXPECT_TRUE(info["infotexts"][0].get<std::string>().starts_with("cinematic still of a red mug"));

  std::tie(status, body) = post(
      "/v1/jobs",
      json{{"prompt", "a fox"}, {"styles", {"中文风格"}}, {"width", 16}, {"height", 16}}.dump());
  ASSERT_EQ(status, 202) << body.dump();
  EXPECT_EQ(job_when(body["id"], "completed")["images"][0]["request"]["prompt"], "水墨画, a fox");

  std::tie(status, body) = post("/sdapi/v1/txt2img", R"({"prompt": "p", "styles": ["Noir"]})");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(body["error"]["param"], "styles");
  EXPECT_THAT(body["error"]["message"].get<std::string>(), ::testing::HasSubstr("'Noir'"));
  EXPECT_EQ(post("/v1/jobs", R"({"prompt": "p", "styles": "Cinematic"})").first, 400);
}

// LoRAs by name from the server's folder: listed, taken from an A1111 prompt's tags or a `loras`
// field, loaded with the model as a model of their own; an unknown name is a 404 naming it.
TEST_F(HttpServerTest, LorasByName) {
  start();
  const json listed = get("/sdapi/v1/loras").second;
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["name"], "ink");
  EXPECT_EQ(listed[0]["path"], "ink.safetensors");  // no server folders

  auto [status, body] = post("/sdapi/v1/txt2img", R"({"prompt": "a cat <lora:ink:0.5>"})");
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(loaded_files_.size(), 1u);
  ASSERT_EQ(loaded_files_[0].loras.size(), 1u);
  EXPECT_EQ(loaded_files_[0].loras[0].path, "/loras/ink.safetensors");
  EXPECT_EQ(loaded_files_[0].loras[0].scale, 0.5f);
  EXPECT_EQ(registry_->loaded(), std::vector<std::string>{"fake-a <lora:ink:0.5>"});

  std::tie(status, body) =
      post("/v1/jobs", R"({"prompt": "p", "loras": [{"name": "../ink", "scale": 1}]})");
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "loras");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("'../ink'"), std::string::npos);
}

// ControlNets by name from the server's folder: listed as the A1111 extension lists them, loaded
// with the model as a model of their own; an unknown name is a 404 naming it.
TEST_F(HttpServerTest, ControlNetsByName) {
  start();
  EXPECT_EQ(get("/controlnet/model_list").second, (json{{"model_list", {"canny"}}}));
  const std::string image =
      base64_encode(io::encode_png(io::Image{16, 16, std::vector<uint8_t>(768, 9)}));
  auto [status, body] = post(
      "/v1/jobs", json{{"prompt", "p"}, {"controlnet", "canny"}, {"control_image", image}}.dump());
  ASSERT_EQ(status, 202) << body.dump();
  std::tie(status, body) =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "p"},
                {"alwayson_scripts",
                 {{"controlnet", {{"args", {{{"model", "canny [0123abcd]"}, {"image", image}}}}}}}}}
               .dump());
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_FALSE(loaded_files_.empty());
  EXPECT_EQ(loaded_files_[0].controlnets,
            std::vector<std::filesystem::path>{"/controlnets/canny.safetensors"});
  EXPECT_EQ(registry_->loaded(), std::vector<std::string>{"fake-a <controlnet:canny>"});

  std::tie(status, body) =
      post("/v1/jobs",
           json{{"prompt", "p"}, {"controlnet", "../canny"}, {"control_image", image}}.dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "controlnet");
}

// Upscalers by name from the server's folder: listed as A1111 lists them (with each file's
// architecture and scale; a file that is no upscaler left out), run by the extras endpoint (A1111's
// sizes: multiples of 8, reached by the model and then Lanczos) and by the hires fix; an unknown
// name is a 404 naming the field.
TEST_F(HttpServerTest, UpscalersByName) {
  start();
  json names = json::array();
  const json listed = get("/sdapi/v1/upscalers").second;
  for (const json& u : listed) names.push_back(u["name"]);
  EXPECT_EQ(names, (json{"None", "Lanczos", "Nearest", "tiny-4x", "compact-2x"}));
  EXPECT_EQ(listed[3]["model_name"], "ESRGAN");
  EXPECT_EQ(listed[3]["scale"], 4);
  EXPECT_EQ(listed[4]["model_name"], "RealESRGAN Compact");
  EXPECT_EQ(listed[4]["scale"], 2);
  EXPECT_EQ(get("/sdapi/v1/latent-upscale-modes").second,
            (json{{{"name", "Latent"}},
                  {{"name", "Latent (antialiased)"}},
                  {{"name", "Latent (bicubic)"}},
                  {{"name", "Latent (bicubic antialiased)"}},
                  {{"name", "Latent (nearest)"}},
                  {{"name", "Latent (nearest-exact)"}}}));

  const std::filesystem::path dir = zflow::test::fixture("esrgan");
  const io::Image picture = io::read_image(dir / "esrgan_picture.png");  // 13 x 11
  const std::string image = base64_encode(io::encode_png(picture));
  auto [status, body] =
      post("/sdapi/v1/extra-single-image",
           json{{"image", image}, {"upscaling_resize", 4}, {"upscaler_1", "tiny-4x"}}.dump());
  ASSERT_EQ(status, 200) << body.dump();
  const io::Image up = decode(body["image"]);
  EXPECT_EQ(std::pair(up.width, up.height), std::pair(48, 40));  // 52 x 44 rounded down to 8s
  const io::Image want = io::resize_image(io::read_image(dir / "esrgan_x4_picture.png"), 48, 40,
                                          io::ResampleFilter::Lanczos);
  EXPECT_GE(zflow::test::psnr(up, want), 40.0);
  EXPECT_EQ(body["html_info"],
            "<p>Postprocess upscale by: 3.692, Postprocess upscaler: tiny-4x</p>");

  std::tie(status, body) =
      post("/sdapi/v1/extra-batch-images",
           json{{"imageList", {{{"data", image}, {"name", "a"}}, {{"data", image}, {"name", "b"}}}},
                {"upscaling_resize", 2},
                {"upscaler_1", "Nearest"}}
               .dump());
  ASSERT_EQ(status, 200) << body.dump();
  ASSERT_EQ(body["images"].size(), 2u);
  EXPECT_EQ(decode(body["images"][1]).rgb,
            io::resize_image(picture, 24, 16, io::ResampleFilter::Nearest).rgb);

  // A second upscaler, blended in with its visibility (Pillow's Image.blend).
  std::tie(status, body) =
      post("/sdapi/v1/extra-single-image", json{{"image", image},
                                                {"upscaling_resize", 2},
                                                {"upscaler_1", "Nearest"},
                                                {"upscaler_2", "Lanczos"},
                                                {"extras_upscaler_2_visibility", 0.25}}
                                               .dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(decode(body["image"]).rgb,
            io::blend_images(io::resize_image(picture, 24, 16, io::ResampleFilter::Nearest),
                             io::resize_image(picture, 24, 16, io::ResampleFilter::Lanczos), 0.25f)
                .rgb);
  EXPECT_EQ(body["html_info"],
            "<p>Postprocess upscale by: 1.846, Postprocess upscaler: Nearest, Postprocess upscaler "
            "2: Lanczos</p>");
  std::tie(status, body) =
      post("/sdapi/v1/extra-single-image",
           json{{"image", image}, {"upscaler_2", "missing"}, {"extras_upscaler_2_visibility", 0.5}}
               .dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "upscaler_2");

  std::tie(status, body) = post("/sdapi/v1/extra-single-image",
                                json{{"image", image}, {"upscaler_1", "../tiny-4x"}}.dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "upscaler_1");

  std::tie(status, body) =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "p"}, {"enable_hr", true}, {"hr_scale", 2}, {"hr_upscaler", "tiny-4x"}}
               .dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(decode(body["images"][0]).width, 64);
  EXPECT_THAT(json::parse(body["info"].get<std::string>())["infotexts"][0].get<std::string>(),
              ::testing::HasSubstr("Hires upscaler: tiny-4x"));
  std::tie(status, body) =
      post("/v1/jobs", json{{"prompt", "p"}, {"hires_scale", 2}, {"hires_upscaler", "x"}}.dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "hires_upscaler");
}

// The hires fix's second pass on another of the server's models (A1111's hr_checkpoint_name,
// zflow's hires_model), loaded beside the first; unknown names are refused by field.
TEST_F(HttpServerTest, HiresModelByName) {
  start();
  auto [status, body] = post("/sdapi/v1/txt2img", json{{"prompt", "p"},
                                                       {"width", 32},
                                                       {"height", 32},
                                                       {"enable_hr", true},
                                                       {"hr_scale", 2},
                                                       {"hr_checkpoint_name", "fake-b"}}
                                                      .dump());
  ASSERT_EQ(status, 200) << body.dump();
  EXPECT_EQ(decode(body["images"][0]).width, 64);
  EXPECT_THAT(json::parse(body["info"].get<std::string>())["infotexts"][0].get<std::string>(),
              ::testing::HasSubstr("Hires upscaler: Lanczos, Hires checkpoint: fake-b"));
  ASSERT_EQ(loaded_files_.size(), 2u);
  EXPECT_EQ(loaded_files_[0].model_dir, "a");
  EXPECT_EQ(loaded_files_[1].model_dir, "b");

  std::tie(status, body) =
      post("/sdapi/v1/txt2img",
           json{{"prompt", "p"}, {"enable_hr", true}, {"hr_checkpoint_name", "fake-zzz"}}.dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "hr_checkpoint_name");
  std::tie(status, body) =
      post("/v1/jobs", json{{"prompt", "p"}, {"hires_model", "../fake-b"}}.dump());
  EXPECT_EQ(status, 404) << body.dump();
  EXPECT_EQ(body["error"]["param"], "hires_model");
}

TEST_F(HttpServerTest, NativeJobsWithEventsAndCancellation) {
  start();
  auto [status, job] =
      post("/v1/jobs", R"({"prompt": "p", "steps": 5, "width": 16, "height": 16})");
  ASSERT_EQ(status, 202) << job.dump();
  const std::string id = job["id"];

  // The events stream ends with `done` after progress events that count up.
  std::string stream;
  auto res = client_->Get(("/v1/jobs/" + id + "/events").c_str(), [&](const char* data, size_t n) {
    stream.append(data, n);
    return true;
  });
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const size_t done = stream.find("event: done\ndata: ");
  ASSERT_NE(done, std::string::npos) << stream;
  const json final =
      json::parse(stream.substr(done + 18, stream.find('\n', done + 18) - done - 18));
  EXPECT_EQ(final["state"], "completed");
  EXPECT_EQ(final["progress"]["step"], 5);

  // Asked for, previews ride along with the progress events (the fake paints step k with k); the
  // job is held mid-run so the stream is read while it runs.
  gate_.close();
  std::tie(status, job) = post(
      "/v1/jobs", R"({"prompt": "p", "steps": 3, "width": 16, "height": 16, "preview": true})");
  ASSERT_EQ(status, 202) << job.dump();
  gate_.wait_for_holder();
  std::string previews;
  client_->Get(("/v1/jobs/" + job["id"].get<std::string>() + "/events").c_str(),
               [&](const char* data, size_t n) {
                 previews.append(data, n);
                 return previews.find("\n\n") == std::string::npos;  // one event is enough
               });
  gate_.release();
  // The preview job runs on to its end; the gate must not be closed on it again below.
  ASSERT_EQ(job_when(job["id"], "completed")["state"], "completed");
  const size_t at = previews.find("\"preview\":\"");
  ASSERT_NE(at, std::string::npos) << previews;
  const std::string b64 = previews.substr(at + 11, previews.find('"', at + 11) - at - 11);
  EXPECT_EQ(decode(b64).width, 4);
  EXPECT_EQ(post("/v1/jobs", R"({"prompt": "p", "preview": "yes"})").first, 400);

  auto [gs, result] = get("/v1/jobs/" + id);
  EXPECT_EQ(gs, 200);
  ASSERT_EQ(result["images"].size(), 1u);
  EXPECT_EQ(decode(result["images"][0]["b64"]).height, 16);
  EXPECT_EQ(result["images"][0]["request"]["steps"], 5);

  // A job held mid-run shows in A1111's progress, and DELETE cancels it.
  gate_.close();
  std::tie(status, job) = post("/v1/jobs", R"({"prompt": "slow", "steps": 4})");
  const std::string slow = job["id"];
  gate_.wait_for_holder();
  const json progress = get("/sdapi/v1/progress").second;
  EXPECT_EQ(progress["state"]["sampling_steps"], 4);
  EXPECT_EQ(progress["state"]["job"], slow);
  const auto queued = post("/v1/jobs", R"({"prompt": "next"})").second;
  EXPECT_EQ(queued["queue_position"], 1);
  const auto del = client_->Delete(("/v1/jobs/" + slow).c_str());
  ASSERT_TRUE(del);
  EXPECT_EQ(del->status, 200);
  gate_.release();
  EXPECT_EQ(job_when(slow, "cancelled")["state"], "cancelled");
  EXPECT_EQ(get("/v1/jobs/job-0-nothing").first, 404);
}

// Outpainting through the jobs API: the canvas (init image grown by the margins) is what the
// model inpaints, and an output sized by a request's images is held to --max-size like one a
// request names (422 from the model's side, since only the model knows the size it derives).
TEST_F(HttpServerTest, OutpaintJobsAndImageSizedOutputsWithinLimits) {
  ServerOptions options;
  options.limits.max_side = 64;
  start(options);
  const std::string init =
      base64_encode(io::encode_png(io::Image{32, 32, std::vector<uint8_t>(32 * 32 * 3, 90)}));
  const auto finished = [&](const std::string& id) {
    json job;
    for (int i = 0; i < 1000; ++i) {
      job = get("/v1/jobs/" + id).second;
      if (job["state"] != "queued" && job["state"] != "running") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return job;
  };
  auto [status, job] = post(
      "/v1/jobs", json{{"prompt", "p"}, {"init_image", init}, {"outpaint", {16, 0, 8, 0}}}.dump());
  ASSERT_EQ(status, 202) << job.dump();
  json done = finished(job["id"]);
  ASSERT_EQ(done["state"], "completed") << done.dump();
  const io::Image wide = decode(done["images"][0]["b64"]);
  EXPECT_EQ(wide.width, 64);  // 16 + 32 + 8, widened to whole 16-pixel tokens
  EXPECT_EQ(wide.height, 32);

  std::tie(status, job) =
      post("/v1/jobs", json{{"prompt", "p"}, {"init_image", init}, {"outpaint", 32}}.dump());
  ASSERT_EQ(status, 202) << job.dump();
  done = finished(job["id"]);
  EXPECT_EQ(done["state"], "failed") << done.dump();
  EXPECT_NE(
      done["error"].get<std::string>().find("96x96 output, past this server's largest side, 64"),
      std::string::npos)
      << done.dump();
  // The synchronous APIs answer the same refusal as 422.
  const std::string big =
      base64_encode(io::encode_png(io::Image{80, 16, std::vector<uint8_t>(80 * 16 * 3, 90)}));
  const auto refused =
      post("/sdapi/v1/img2img", json{{"prompt", "p"}, {"init_images", {big}}}.dump());
  EXPECT_EQ(refused.first, 422) << refused.second.dump();

  for (const json& bad :
       {json{{"prompt", "p"}, {"outpaint", 16}},
        json{{"prompt", "p"}, {"init_image", init}, {"mask", init}, {"outpaint", 16}},
        json{{"prompt", "p"}, {"init_image", init}, {"outpaint", "16"}},
        json{{"prompt", "p"}, {"init_image", init}, {"outpaint", {1, 2}}},
        json{{"prompt", "p"}, {"init_image", init}, {"outpaint", {0, 0, 0, 0}}},
        json{{"prompt", "p"}, {"init_image", init}, {"outpaint", -4}}}) {
    const auto r = post("/v1/jobs", bad.dump());
    EXPECT_EQ(r.first, 400) << bad.dump();
    EXPECT_EQ(r.second["error"]["param"], "outpaint") << r.second.dump();
  }
}

// Jobs that wait while a run holds the model, and differ only in prompt, seed and image count,
// run together (--join-jobs); each still gets its own images.
TEST_F(HttpServerTest, WaitingJobsJoinOneRun) {
  start({.max_joined_images = 4});
  gate_.close();
  auto [status, held] = post("/v1/jobs", R"({"prompt": "held", "seed": 1})");
  ASSERT_EQ(status, 202) << held.dump();
  gate_.wait_for_holder();
  std::vector<std::pair<std::string, int>> jobs;  // id, seed
  for (const auto& [body, seed] :
       std::vector<std::pair<std::string, int>>{{R"({"prompt": "a", "seed": 5})", 5},
                                                {R"({"prompt": "b", "seed": 6, "n": 2})", 6},
                                                {R"({"prompt": "c", "seed": 7, "width": 64})", 7},
                                                {R"({"prompt": "d", "seed": 8})", 8}}) {
    const auto [s, job] = post("/v1/jobs", body);
    ASSERT_EQ(s, 202) << job.dump();
    jobs.emplace_back(job["id"], seed);
  }
  gate_.release();
  for (const auto& [id, seed] : jobs) {
    json job;
    for (int i = 0; i < 1000 && (job = get("/v1/jobs/" + id).second)["state"] != "completed"; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_EQ(job["state"], "completed") << job.dump();
    for (const auto& image : job["images"]) EXPECT_EQ(decode(image["b64"]).rgb[0], seed);
  }
  // held; a, b and d together (c is another size); c.
  const std::string metrics = client_->Get("/metrics")->body;
  EXPECT_NE(metrics.find("zflow_runs_total 3\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("zflow_jobs_total{state=\"completed\"} 5"), std::string::npos);
}

TEST_F(HttpServerTest, RefusalsAreJsonNamingTheProblem) {
  ServerOptions options;
  options.max_body_bytes = 4096;
  options.queue_capacity = 1;
  start(options);
  const auto expect = [](const std::pair<int, json>& r, int status, const std::string& param) {
    EXPECT_EQ(r.first, status) << r.second.dump();
    EXPECT_EQ(r.second["error"]["code"], status) << r.second.dump();
    if (!param.empty()) {
      EXPECT_EQ(r.second["error"]["param"], param) << r.second.dump();
    }
  };
  expect(post("/v1/images/generations", "{not json"), 400, "");
  expect(post("/v1/images/generations", R"({"prompt": "x", "size": "17x16"})"), 400, "size");
  expect(post("/v1/images/generations", R"({"prompt": "x", "model": "/etc/passwd"})"), 404,
         "model");
  expect(post("/v1/jobs", R"({"prompt": "x", "n": 100})"), 400, "n");
  expect(get("/v1/nothing"), 404, "");
  // The fake refuses `guidance` the way Z-Image does: the request was fine JSON, the model said
  // no, so 422 with the model's message.
  const auto refused = post("/v1/images/generations", R"({"prompt": "x", "guidance": 2})");
  expect(refused, 422, "");
  EXPECT_NE(refused.second["error"]["message"].get<std::string>().find("guidance"),
            std::string::npos);
  // A model that cannot load fails its job with the loader's message; the server carries on.
  const auto broken = post("/v1/images/generations", R"({"prompt": "x", "model": "fake-broken"})");
  expect(broken, 500, "");
  EXPECT_NE(broken.second["error"]["message"].get<std::string>().find("file is truncated"),
            std::string::npos);
  const auto big = client_->Post("/v1/jobs", std::string(10000, ' '), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);

  // Queue of one: a running job plus one waiting fill it; the next is refused with 429.
  gate_.close();
  post("/v1/jobs", R"({"prompt": "runs"})");
  gate_.wait_for_holder();
  EXPECT_EQ(post("/v1/jobs", R"({"prompt": "waits"})").first, 202);
  expect(post("/v1/jobs", R"({"prompt": "refused"})"), 429, "");
  gate_.release();
  EXPECT_EQ(get("/health").first, 200);  // still serving
}

TEST_F(HttpServerTest, ApiKeyGuardsEverythingButThePageAndHealth) {
  ServerOptions options;
  options.api_key = "s3cret";
  start(options);
  EXPECT_EQ(get("/v1/models").first, 401);
  EXPECT_EQ(get("/v1/models", {{"Authorization", "Bearer wrong"}}).first, 401);
  EXPECT_EQ(get("/v1/models", {{"Authorization", "s3cret"}}).first, 401);
  EXPECT_EQ(get("/v1/models", {{"Authorization", "Bearer s3cret"}}).first, 200);
  EXPECT_EQ(post("/sdapi/v1/txt2img", "{}").first, 401);
  EXPECT_EQ(get("/health").first, 200);
  const auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<title>zflow</title>"), std::string::npos);
}

// A synchronous request whose client hangs up mid-run: the job is cancelled, not run to the end
// for nobody (the gate holds the run until then; only the cancellation lets it go).
TEST_F(HttpServerTest, SyncJobIsCancelledWhenItsClientHangsUp) {
  start();
  gate_.close();
  const int sock = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(sock, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string body = R"({"prompt": "x", "size": "16x16", "steps": 4})";
  const std::string request =
      "POST /v1/images/generations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(send(sock, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
  gate_.wait_for_holder();
  close(sock);
  const std::string cancelled = "zflow_jobs_total{state=\"cancelled\"} 1\n";
  std::string metrics;
  for (int i = 0; i < 400 && metrics.find(cancelled) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const auto res = client_->Get("/metrics");
    metrics = res ? res->body : "";
  }
  EXPECT_NE(metrics.find(cancelled), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("zflow_jobs_total{state=\"completed\"} 0\n"), std::string::npos)
      << metrics;
}

TEST_F(HttpServerTest, MetricsCountWhatHappened) {
  start();
  post("/v1/images/generations", R"({"prompt": "x", "size": "16x16", "steps": 2})");
  post("/v1/images/generations", "{");
  const auto res = client_->Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4");
  for (const char* line :
       {"zflow_jobs_total{state=\"completed\"} 1\n", "zflow_step_seconds_count 2\n",
        "zflow_http_responses_total{code=\"400\"} 1\n", "zflow_models_loaded 1\n"})
    EXPECT_NE(res->body.find(line), std::string::npos) << line << res->body;
}

}  // namespace
}  // namespace zflow::server
