// The AUTOMATIC1111 web UI's API (/sdapi/v1/...), as existing clients call it: txt2img, img2img,
// extras' upscaling (single and batch), png-info, progress, interrupt, options (the model switch),
// sd-models, loras, upscalers, samplers and schedulers.
#include <chrono>

#include "sampling/flow_sampler.h"
#include "server/base64.h"
#include "server/job_prompts.h"
#include "server/server_state.h"

namespace zflow::server {

namespace {

using nlohmann::json;

// A1111's `info` is a JSON document inside a string, describing the batch.
// `body` is the request as sent: A1111's `prompt` and `negative_prompt` are those, before styles
// and templates.
std::string a1111_info(const json& body, const JobSpec& spec, const JobStatus& status) {
  const json first = status.images.empty() ? json::object() : status.images.front().record;
  const size_t n = status.images.size();
  // Each image's own seed and subseed (seed + k, or subseed + k with one: A1111's batches).
  json infotexts = json::array(), seeds = json::array(), subseeds = json::array();
  // Each image's own prompts where templates gave it some (the Dynamic Prompts extension's
  // all_prompts), with its styles.
  const pipeline::GenerationRequest& r = spec.request;
  json prompts = json::array(), negative_prompts = json::array();
  for (size_t k = 0; k < n; ++k) {
    prompts.push_back(k < r.image_prompts.size() ? r.image_prompts[k] : r.prompt);
    negative_prompts.push_back(k < r.image_negative_prompts.size() ? r.image_negative_prompts[k]
                                                                   : r.negative_prompt);
  }
  for (const JobImage& image : status.images) {
    infotexts.push_back(image.parameters);
    seeds.push_back(image.record.value("seed", json()));
    const json variation = image.record.value("variation", json());
    subseeds.push_back(variation.is_object() ? variation.value("seed", json(-1)) : json(-1));
  }
  const auto seed = first.value("seed", json());
  const auto sent = [&](const char* field) {
    const auto it = body.find(field);
    return it != body.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  return json{{"prompt", sent("prompt")},
              {"all_prompts", prompts},
              {"negative_prompt", sent("negative_prompt")},
              {"all_negative_prompts", negative_prompts},
              {"seed", seed},
              {"all_seeds", seeds},
              {"subseed", spec.request.variation ? json(spec.request.variation->seed) : json(-1)},
              {"all_subseeds", subseeds},
              {"subseed_strength",
               spec.request.variation ? json(spec.request.variation->strength) : json(0)},
              {"width", first.value("width", json())},
              {"height", first.value("height", json())},
              {"sampler_name", flow_sampler_display_name(spec.request.sampling.sampler)},
              {"scheduler", first.value("scheduler", json())},  // the schedule that ran
              {"cfg_scale", first.value("guidance", json())},
              {"steps", first.value("steps", json())},
              {"batch_size", n},
              {"sd_model_name", spec.model},
              {"infotexts", infotexts},
              {"styles", json::array()}}
      .dump();
}

void generate(ServerState& s, const httplib::Request& req, httplib::Response& res, bool img2img) {
  answer(res, [&] {
    json body = parse_json_object(req.body);
    JobSpec spec = parse_a1111(body, img2img, s.options.limits, s.models.default_model());
    apply_prompt_styles(body, spec, s.options.styles);
    // Here, not at submission, so that `info` lists each image's prompts.
    expand_prompt_templates(spec, s.options.prompt_templates, s.options.wildcards,
                            s.options.limits);
    const JobStatus status =
        run_to_completion(s, spec, "sd_model_checkpoint", ClientConnection(req));
    json images = json::array();
    if (spec.send_images)
      for (const JobImage& image : status.images) images.push_back(base64_encode(image.encoded));
    // The parameters echo the request, minus the (large) input images, with the seed used.
    body.erase("init_images");
    body.erase("mask");
    body["seed"] = spec.request.seed;
    if (spec.request.variation) body["subseed"] = spec.request.variation->seed;
    send_json(res, 200,
              {{"images", images}, {"parameters", body}, {"info", a1111_info(body, spec, status)}});
  });
}

}  // namespace

void add_a1111_routes(ServerState& s) {
  s.http.Post("/sdapi/v1/txt2img", [&s](const httplib::Request& req, httplib::Response& res) {
    generate(s, req, res, false);
  });
  s.http.Post("/sdapi/v1/img2img", [&s](const httplib::Request& req, httplib::Response& res) {
    generate(s, req, res, true);
  });

  // The extras tab's upscaling: {"html_info", "image"}.
  s.http.Post(
      "/sdapi/v1/extra-single-image", [&s](const httplib::Request& req, httplib::Response& res) {
        answer(res, [&] {
          JobSpec spec = parse_a1111_extras(parse_json_object(req.body), s.options.limits,
                                            s.models.default_model());
          const JobStatus status = run_to_completion(s, std::move(spec), "", ClientConnection(req));
          const JobImage& image = status.images.at(0);
          send_json(res, 200,
                    {{"html_info", "<p>" + image.parameters + "</p>"},
                     {"image", base64_encode(image.encoded)}});
        });
      });

  s.http.Post(
      "/sdapi/v1/extra-batch-images", [&s](const httplib::Request& req, httplib::Response& res) {
        answer(res, [&] {
          JobSpec spec = parse_a1111_extras_batch(parse_json_object(req.body), s.options.limits,
                                                  s.models.default_model());
          const JobStatus status = run_to_completion(s, std::move(spec), "", ClientConnection(req));
          json images = json::array();
          for (const JobImage& image : status.images)
            images.push_back(base64_encode(image.encoded));
          send_json(
              res, 200,
              {{"html_info", "<p>" + status.images.at(0).parameters + "</p>"}, {"images", images}});
        });
      });

  // A1111's upscaler list: its built-in filters and the server's models (--upscaler-dir).
  s.http.Get("/sdapi/v1/upscalers", [&s](const httplib::Request&, httplib::Response& res) {
    json upscalers = json::array();
    for (const char* filter : {"None", "Lanczos", "Nearest"})
      upscalers.push_back({{"name", filter},
                           {"model_name", nullptr},
                           {"model_path", nullptr},
                           {"model_url", nullptr},
                           {"scale", 4}});
    for (const LoraEntry& u : s.models.upscalers()) {
      const models::UpscalerDescription& d = s.models.upscaler_description(u.name);
      upscalers.push_back({{"name", u.name},
                           {"model_name", d.architecture},
                           {"model_path", u.path.filename().string()},
                           {"model_url", nullptr},
                           {"scale", d.scale}});
    }
    send_json(res, 200, upscalers);
  });

  // A1111's latent upscalers, for hr_upscaler (pipeline/latent_upscale.h).
  s.http.Get("/sdapi/v1/latent-upscale-modes", [](const httplib::Request&, httplib::Response& res) {
    json modes = json::array();
    for (const auto mode :
         {pipeline::LatentUpscale::Bilinear, pipeline::LatentUpscale::BilinearAntialiased,
          pipeline::LatentUpscale::Bicubic, pipeline::LatentUpscale::BicubicAntialiased,
          pipeline::LatentUpscale::Nearest, pipeline::LatentUpscale::NearestExact})
      modes.push_back({{"name", pipeline::latent_upscale_name(mode)}});
    send_json(res, 200, modes);
  });

  s.http.Post("/sdapi/v1/png-info", [](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] { send_json(res, 200, png_info(parse_json_object(req.body))); });
  });

  s.http.Get("/sdapi/v1/progress", [&s](const httplib::Request&, httplib::Response& res) {
    answer(res, [&] {
      const auto job = s.queue.running();
      const JobStatus st = job ? job->status() : JobStatus{};
      const double progress = st.steps > 0 ? double(st.step) / st.steps : 0.0;
      const double eta = st.step > 0 ? st.run_seconds / st.step * (st.steps - st.step) : 0.0;
      send_json(res, 200,
                {{"progress", progress},
                 {"eta_relative", eta},
                 {"state",
                  {{"skipped", false},
                   {"interrupted", job && job->stop_token().stop_requested()},
                   {"job", job ? job->id() : ""},
                   {"job_count", s.queue.depth() + (job ? 1 : 0)},
                   {"job_no", 0},
                   {"sampling_step", st.step},
                   {"sampling_steps", st.steps}}},
                 {"current_image", nullptr},
                 {"textinfo", nullptr}});
    });
  });

  s.http.Post("/sdapi/v1/interrupt", [&s](const httplib::Request&, httplib::Response& res) {
    s.queue.cancel_running();
    send_json(res, 200, json::object());
  });

  s.http.Get("/sdapi/v1/options", [&s](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"sd_model_checkpoint", s.models.default_model()}});
  });
  s.http.Post("/sdapi/v1/options", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const json body = parse_json_object(req.body);
      if (const auto it = body.find("sd_model_checkpoint"); it != body.end()) {
        if (!it->is_string())
          throw ApiError(400, "sd_model_checkpoint", "sd_model_checkpoint: expected a string");
        const std::string name = it->get<std::string>();
        if (!s.models.contains(name))
          throw ApiError(404, "sd_model_checkpoint",
                         "sd_model_checkpoint: model '" + name + "' is not one this server offers");
        s.models.set_default_model(name);
      }
      send_json(res, 200, nullptr);
    });
  });

  // Let go of the models no job is using; the next request loads its own again.
  s.http.Post("/sdapi/v1/unload-checkpoint", [&s](const httplib::Request&, httplib::Response& res) {
    s.models.unload_idle();
    send_json(res, 200, nullptr);
  });
  // The prompt styles requests may name (zflow serve --styles, A1111's styles.csv).
  s.http.Get("/sdapi/v1/prompt-styles", [&s](const httplib::Request&, httplib::Response& res) {
    json styles = json::array();
    for (const text::PromptStyle& style : s.options.styles)
      styles.push_back({{"name", style.name},
                        {"prompt", style.prompt},
                        {"negative_prompt", style.negative_prompt}});
    send_json(res, 200, styles);
  });
  // What A1111 clients list on connecting, which zflow has none of: VAE files to swap in (each
  // model decodes with its own), face restorers, textual-inversion embeddings.
  for (const char* path : {"/sdapi/v1/sd-vae", "/sdapi/v1/face-restorers"})
    s.http.Get(path, [](const httplib::Request&, httplib::Response& res) {
      send_json(res, 200, json::array());
    });
  s.http.Get("/sdapi/v1/embeddings", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"loaded", json::object()}, {"skipped", json::object()}});
  });

  s.http.Get("/sdapi/v1/sd-models", [&s](const httplib::Request&, httplib::Response& res) {
    json models = json::array();
    for (const ModelEntry& e : s.models.entries())
      models.push_back({{"title", e.name},
                        {"model_name", e.name},
                        {"hash", nullptr},
                        {"sha256", nullptr},
                        {"filename", e.name},
                        {"config", nullptr}});
    send_json(res, 200, models);
  });

  // The LoRAs prompts may name (<lora:NAME:SCALE>) or `loras` may list, as A1111's Lora
  // extension lists them (the path without the server's folders).
  s.http.Get("/sdapi/v1/loras", [&s](const httplib::Request&, httplib::Response& res) {
    json loras = json::array();
    for (const LoraEntry& l : s.models.loras())
      loras.push_back({{"name", l.name},
                       {"alias", l.name},
                       {"path", l.path.filename().string()},
                       {"metadata", json::object()}});
    send_json(res, 200, loras);
  });

  // The ControlNet extension's lists: the server's ControlNets by name; no preprocessors.
  s.http.Get("/controlnet/model_list", [&s](const httplib::Request&, httplib::Response& res) {
    json names = json::array();
    for (const LoraEntry& c : s.models.controlnets()) names.push_back(c.name);
    send_json(res, 200, {{"model_list", names}});
  });
  s.http.Get("/controlnet/module_list", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"module_list", json::array({"none"})}});
  });
  // Clients look for the ControlNet extension here before sending its units.
  s.http.Get("/controlnet/version", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"version", 2}});
  });

  // The scripts: no selectable ones (script_name is refused), and the always-on ones whose
  // alwayson_scripts entries zflow reads, so clients that look before sending find them.
  s.http.Get("/sdapi/v1/scripts", [](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"txt2img", json::array()}, {"img2img", json::array()}});
  });
  s.http.Get("/sdapi/v1/script-info", [](const httplib::Request&, httplib::Response& res) {
    json scripts = json::array();
    for (const char* name : {"controlnet", "dynamic prompts v2.17.1"})
      for (const bool img2img : {false, true})
        scripts.push_back({{"name", name},
                           {"is_alwayson", true},
                           {"is_img2img", img2img},
                           {"args", json::array()}});
    send_json(res, 200, scripts);
  });

  s.http.Get("/sdapi/v1/samplers", [](const httplib::Request&, httplib::Response& res) {
    json samplers = json::array();
    for (const FlowSampler sampler : kFlowSamplers)
      samplers.push_back({{"name", flow_sampler_display_name(sampler)},
                          {"aliases", {flow_sampler_name(sampler)}},
                          {"options", json::object()}});
    send_json(res, 200, samplers);
  });
  s.http.Get("/sdapi/v1/schedulers", [](const httplib::Request&, httplib::Response& res) {
    json schedules = json::array();
    for (const SigmaSchedule schedule : kSigmaSchedules)
      schedules.push_back(
          {{"name", sigma_schedule_name(schedule)}, {"label", sigma_schedule_label(schedule)}});
    send_json(res, 200, schedules);
  });
}

}  // namespace zflow::server
