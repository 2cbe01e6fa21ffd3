// zflow's native job API: submit (202 with an id), poll, follow as server-sent events with
// per-step progress, cancel.
#include <fmt/format.h>

#include <chrono>

#include "server/base64.h"
#include "server/job_prompts.h"
#include "server/server_state.h"

namespace zflow::server {

namespace {

using nlohmann::json;

json status_json(const ServerState& s, const Job& job, const JobStatus& st, bool with_images) {
  json j = {{"id", job.id()},
            {"state", job_state_name(st.state)},
            {"model", job.spec().model},
            {"queue_position", st.state == JobState::Queued ? s.queue.position(job.id()) : 0},
            {"progress", {{"step", st.step}, {"steps", st.steps}}},
            {"queued_seconds", st.queued_seconds},
            {"run_seconds", st.run_seconds},
            {"output_format", output_format_name(job.spec().format)}};
  if (!st.error.empty()) j["error"] = st.error;
  if (!st.preview_png.empty() && !is_final(st.state)) j["preview"] = base64_encode(st.preview_png);
  if (with_images && st.state == JobState::Completed) {
    json images = json::array();
    for (const JobImage& image : st.images)
      images.push_back({{"b64", base64_encode(image.encoded)},
                        {"parameters", image.parameters},
                        {"request", image.record}});
    j["images"] = images;
  }
  return j;
}

std::shared_ptr<Job> find_job(ServerState& s, const httplib::Request& req) {
  auto job = s.queue.find(req.matches[1]);
  if (!job) throw ApiError(404, "id", fmt::format("no job '{}'", req.matches[1].str()));
  return job;
}

// One SSE message.
std::string event(const char* name, const json& data) {
  return fmt::format("event: {}\ndata: {}\n\n", name, data.dump());
}

}  // namespace

void add_job_routes(ServerState& s) {
  s.http.Post("/v1/jobs", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const json body = parse_json_object(req.body);
      JobSpec spec = parse_native_job(body, s.options.limits, s.models.default_model());
      apply_prompt_styles(body, spec, s.options.styles);
      const auto job = submit(s, std::move(spec), "model");
      res.set_header("Location", "/v1/jobs/" + job->id());
      send_json(res, 202, status_json(s, *job, job->status(), false));
    });
  });

  const std::string one_job = R"(/v1/jobs/([A-Za-z0-9-]+))";
  s.http.Get(one_job, [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const auto job = find_job(s, req);
      send_json(res, 200, status_json(s, *job, job->status(), true));
    });
  });

  s.http.Delete(one_job, [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const auto job = find_job(s, req);
      s.queue.cancel(job->id());
      send_json(res, 200, status_json(s, *job, job->status(), false));
    });
  });

  // Events: `progress` on every change (state, step), then one `done` with the final state and
  // the job's address for the images; a comment every couple of seconds keeps proxies from
  // closing an idle stream and notices a client that has gone.
  s.http.Get(one_job + "/events", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const auto job = find_job(s, req);
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      auto seen = std::make_shared<uint64_t>(0);
      res.set_chunked_content_provider(
          "text/event-stream", [&s, job, seen](size_t, httplib::DataSink& sink) {
            const JobStatus st = job->wait_for_change(*seen, std::chrono::seconds(2));
            if (st.version == *seen) return sink.write(": keep-alive\n\n", 15);
            *seen = st.version;
            const std::string msg =
                event(is_final(st.state) ? "done" : "progress", status_json(s, *job, st, false));
            if (!sink.write(msg.data(), msg.size())) return false;
            if (is_final(st.state)) sink.done();
            return true;
          });
    });
  });
}

}  // namespace zflow::server
