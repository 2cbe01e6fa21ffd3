#include "server/server_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/log.h"
#include "io/image.h"
#include "io/image_blend.h"
#include "io/image_paste.h"
#include "io/image_resize.h"
#include "pipeline/upscale.h"
#include "server/job_prompts.h"

namespace zflow::server {

ServerState::ServerState(ServerOptions opts, ModelRegistry& registry)
    : options(std::move(opts)),
      models(registry),
      queue(options.queue_capacity,
            [this](std::span<Job* const> jobs, std::stop_token stop) {
              return run_jobs(jobs, std::move(stop), models, metrics, options.limits);
            },
            metrics, 1000,
            {.joiner = [this](const Job& first) { return joiner_for(first, models); },
             .max_images = options.max_joined_images}) {}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param) {
  const char* type = status == 429   ? "rate_limit_error"
                     : status == 401 ? "authentication_error"
                     : status >= 500 ? "server_error"
                                     : "invalid_request_error";
  send_json(res, status,
            {{"error",
              {{"message", message},
               {"type", type},
               {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
               {"code", status}}}});
}

void answer(httplib::Response& res, const std::function<void()>& body) {
  try {
    body();
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.what(), e.param());
  } catch (const QueueFull& e) {
    res.set_header("Retry-After", "5");
    send_error(res, 429, e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, e.what());
  }
}

std::shared_ptr<Job> submit(ServerState& s, JobSpec spec, const std::string& model_field) {
  expand_prompt_templates(spec, s.options.prompt_templates, s.options.wildcards, s.options.limits);
  if (!s.models.contains(spec.model))
    throw ApiError(404, model_field,
                   "model '" + spec.model + "' is not one this server offers (GET /v1/models)");
  for (const LoraChoice& lora : spec.loras)
    if (!s.models.has_lora(lora.name))
      throw ApiError(
          404, "loras",
          "LoRA '" + lora.name + "' is not one this server offers (GET /sdapi/v1/loras)");
  for (const std::string& controlnet : spec.controlnets)
    if (!s.models.has_controlnet(controlnet))
      throw ApiError(404, "controlnet",
                     "ControlNet '" + controlnet +
                         "' is not one this server offers (GET /controlnet/model_list)");
  if (!spec.upscaler.empty() && !s.models.has_upscaler(spec.upscaler))
    throw ApiError(
        404, model_field == "sd_model_checkpoint" ? "hr_upscaler" : "hires_upscaler",
        "upscaler '" + spec.upscaler + "' is not one this server offers (GET /sdapi/v1/upscalers)");
  if (!spec.hires_model.empty() && !s.models.contains(spec.hires_model))
    throw ApiError(
        404, model_field == "sd_model_checkpoint" ? "hr_checkpoint_name" : "hires_model",
        "model '" + spec.hires_model + "' is not one this server offers (GET /v1/models)");
  if (spec.upscale)
    for (const auto& [field, choice] : {std::pair{"upscaler_1", &spec.upscale->first},
                                        std::pair{"upscaler_2", &spec.upscale->second}})
      if (!choice->model.empty() && !s.models.has_upscaler(choice->model))
        throw ApiError(404, field,
                       "upscaler '" + choice->model +
                           "' is not one this server offers (GET /sdapi/v1/upscalers)");
  return s.queue.submit(std::move(spec));
}

JobStatus run_to_completion(ServerState& s, JobSpec spec, const std::string& model_field,
                            const ClientConnection& client) {
  const auto job = submit(s, std::move(spec), model_field);
  // Woken by every change of the job, and at least this often to look at the client.
  constexpr std::chrono::milliseconds kClientCheck(250);
  JobStatus status = job->status();
  while (!is_final(status.state)) {
    if (!client.still_connected()) {
      log::info("[server] job {}: the client hung up; cancelling it", job->id());
      s.queue.cancel(job->id());
      status = job->wait_until_final();
      break;
    }
    status = job->wait_for_change(status.version, kClientCheck);
  }
  s.queue.forget(job->id());
  if (status.state == JobState::Cancelled) throw ApiError(409, "", "the job was cancelled");
  if (status.state == JobState::Failed)
    throw ApiError(status.error_status == 422 ? 422 : 500, "", status.error);
  return status;
}

namespace {

std::string encode(const io::Image& image, OutputFormat format, const JobImage& meta) {
  std::vector<uint8_t> bytes;
  switch (format) {
    case OutputFormat::Png:
      bytes = io::encode_png(
          image, {{"parameters", meta.parameters}, {"zflow_request", meta.record.dump()}});
      break;
    case OutputFormat::Jpeg:
      bytes = io::encode_jpeg(image);
      break;
    case OutputFormat::Webp:
      bytes = io::encode_webp(image);
      break;
  }
  return {bytes.begin(), bytes.end()};
}

// The job's request with its hires upscaler and second model in place of their names (the job's
// own model named again is the job's model as it is, LoRAs and all).
pipeline::GenerationRequest runnable_request(const JobSpec& spec, ModelRegistry& models) {
  pipeline::GenerationRequest r = spec.request;
  if (!spec.upscaler.empty() && r.hires) {
    r.hires->upscale_model = models.acquire_upscaler(spec.upscaler);
    r.hires->upscale_model_name = spec.upscaler;
  }
  if (!spec.hires_model.empty() && spec.hires_model != spec.model && r.hires)
    r.hires->model = models.acquire(spec.hires_model);
  return r;
}

// An extras job: each picture upscaled (by the model, then Lanczos; or by the filter alone) to
// its size and centred on the canvas, as A1111's extras do it.
std::vector<JobImage> run_upscale(Job& job, ModelRegistry& models) {
  const UpscaleSpec& u = *job.spec().upscale;
  const int count = static_cast<int>(u.pictures.size());
  job.set_progress(0, count);
  const auto model_of = [&](const UpscaleSpec::Upscaler& c) {
    return c.model.empty() ? nullptr : models.acquire_upscaler(c.model);
  };
  const auto first = model_of(u.first);
  const auto second = u.second_visibility > 0 ? model_of(u.second) : nullptr;
  const auto upscaled = [](const UpscaleSpec::Upscaler& c, const models::Upscaler* model,
                           const UpscaleSpec::Picture& p) {
    return model ? pipeline::upscale_image_to(*model, p.image, p.width, p.height)
                 : io::resize_image(p.image, p.width, p.height, c.filter);
  };
  std::vector<JobImage> out;
  for (const UpscaleSpec::Picture& p : u.pictures) {
    if (job.stop_token().stop_requested()) throw pipeline::Cancelled();
    io::Image big = upscaled(u.first, first.get(), p);
    if (u.second_visibility > 0)
      big = io::blend_images(big, upscaled(u.second, second.get(), p), u.second_visibility);
    if (u.crop_width > 0) {
      io::Image canvas{u.crop_width, u.crop_height,
                       std::vector<uint8_t>(static_cast<size_t>(u.crop_width) * u.crop_height * 3)};
      io::paste_image(canvas, big, u.crop_width / 2 - big.width / 2,
                      u.crop_height / 2 - big.height / 2);
      big = std::move(canvas);
    }
    JobImage image;
    image.parameters = fmt::format("Postprocess upscale by: {:.4g}, Postprocess upscaler: {}",
                                   static_cast<double>(p.width) / p.image.width, u.first.label);
    image.record = {{"upscaler", u.first.label}, {"width", big.width}, {"height", big.height}};
    if (u.second_visibility > 0) {
      image.parameters += ", Postprocess upscaler 2: " + u.second.label;
      image.record["upscaler_2"] = u.second.label;
      image.record["upscaler_2_visibility"] = u.second_visibility;
    }
    const auto png = io::encode_png(big, {{"postprocessing", image.parameters}});
    image.encoded.assign(png.begin(), png.end());
    out.push_back(std::move(image));
    job.set_progress(static_cast<int>(out.size()), count);
  }
  return out;
}

}  // namespace

std::function<bool(const Job&)> joiner_for(const Job& first, ModelRegistry& models) {
  const JobSpec& f = first.spec();
  if (f.upscale) return [](const Job&) { return false; };
  auto generator = models.acquire(f.model, f.loras, f.controlnets);
  return [generator = std::move(generator), &f](const Job& other) {
    const JobSpec& o = other.spec();
    return !o.upscale && o.model == f.model && o.loras == f.loras &&
           o.controlnets == f.controlnets && o.upscaler == f.upscaler &&
           o.hires_model == f.hires_model && generator->can_share_forwards(f.request, o.request);
  };
}

std::vector<std::vector<JobImage>> run_jobs(std::span<Job* const> jobs, std::stop_token stop,
                                            ModelRegistry& models, Metrics& metrics,
                                            const RequestLimits& limits) {
  const JobSpec& first = jobs.front()->spec();
  if (first.upscale) return {run_upscale(*jobs.front(), models)};
  const auto generator = models.acquire(first.model, first.loras, first.controlnets);
  std::vector<pipeline::GenerationRequest> requests;
  for (Job* job : jobs) {
    requests.push_back(runnable_request(job->spec(), models));
    pipeline::GenerationSettings settings;
    try {
      settings = generator->resolve(requests.back());
    } catch (const Error& e) {
      throw RejectedByModel(e.what());
    }
    // Sizes a request gives are checked as it arrives; one taken from its images only here.
    if (settings.width > limits.max_side || settings.height > limits.max_side)
      throw RejectedByModel(fmt::format(
          "[server] the request's images make a {}x{} output, past this server's largest side, "
          "{} (--max-size): send width and height, or smaller images",
          settings.width, settings.height, limits.max_side));
    job->set_progress(0, settings.steps_run);
  }

  pipeline::RunControl control;
  control.stop = std::move(stop);
  double last = 0.0;
  control.on_step = [&](const pipeline::StepProgress& p) {
    metrics.step_finished(p.elapsed_seconds - last);
    last = p.elapsed_seconds;
    for (Job* job : jobs) job->set_progress(p.step, p.steps);
  };
  // Previews come for every image of the run; each job that asked shows its first.
  control.on_preview = [&](const std::vector<io::Image>& previews) {
    size_t first_image = 0;
    for (Job* job : jobs) {
      if (job->spec().preview && first_image < previews.size()) {
        const auto png = io::encode_png(previews[first_image]);
        job->set_preview({png.begin(), png.end()});
      }
      first_image += static_cast<size_t>(job->spec().request.batch);
    }
  };
  const bool any_preview =
      std::any_of(jobs.begin(), jobs.end(), [](const Job* job) { return job->spec().preview; });
  if (!any_preview) control.on_preview = nullptr;
  const auto images = generator->generate_together(requests, control);

  std::vector<std::vector<JobImage>> out;
  for (size_t j = 0; j < jobs.size(); ++j) {
    const JobSpec& spec = jobs[j]->spec();
    out.emplace_back();
    for (size_t k = 0; k < images[j].size(); ++k) {
      const pipeline::ImageRecord record = generator->record(requests[j], {}, static_cast<int>(k));
      JobImage image{"", record.parameters, record.request};
      image.encoded = encode(images[j][k], spec.format, image);
      out.back().push_back(std::move(image));
    }
  }
  return out;
}

}  // namespace zflow::server
