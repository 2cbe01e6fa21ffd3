// OpenAI's images API: POST /v1/images/generations (b64_json only) and GET /v1/models.
#include <chrono>

#include "server/base64.h"
#include "server/server_state.h"

namespace zflow::server {

namespace {

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void add_openai_routes(ServerState& s) {
  s.http.Post("/v1/images/generations", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      const JobSpec spec = parse_openai_generation(parse_json_object(req.body), s.options.limits,
                                                   s.models.default_model());
      const std::string format = output_format_name(spec.format);
      const JobStatus status = run_to_completion(s, spec, "model", ClientConnection(req));
      nlohmann::json data = nlohmann::json::array();
      for (const JobImage& image : status.images)
        data.push_back({{"b64_json", base64_encode(image.encoded)},
                        {"revised_prompt", spec.request.prompt},
                        {"seed", image.record.value("seed", nlohmann::json())}});
      send_json(res, 200, {{"created", unix_time()}, {"data", data}, {"output_format", format}});
    });
  });

  s.http.Get("/v1/models", [&s](const httplib::Request&, httplib::Response& res) {
    answer(res, [&] {
      const auto loaded = s.models.loaded();
      nlohmann::json data = nlohmann::json::array();
      for (const ModelEntry& e : s.models.entries())
        data.push_back({{"id", e.name},
                        {"object", "model"},
                        {"created", 0},
                        {"owned_by", "zflow"},
                        {"loaded", std::find(loaded.begin(), loaded.end(), e.name) != loaded.end()},
                        {"default", e.name == s.models.default_model()}});
      send_json(res, 200, {{"object", "list"}, {"data", data}});
    });
  });
}

}  // namespace zflow::server
