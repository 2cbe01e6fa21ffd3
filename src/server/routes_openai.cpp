// OpenAI's images API: POST /v1/images/generations and /v1/images/edits (b64_json only) and
// GET /v1/models.
#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "server/base64.h"
#include "server/server_state.h"

namespace zflow::server {

namespace {

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The edit as OpenAI's SDKs send it (multipart/form-data: files `image` or `image[]` and `mask`,
// text fields beside them) or as JSON with base64 strings in `image` (one or an array) and `mask`.
OpenAiEdit edit_request(const httplib::Request& req) {
  OpenAiEdit edit;
  if (req.is_multipart_form_data()) {
    std::vector<std::pair<std::string, std::string>> fields;
    for (const auto& [name, part] : req.files) {
      if (name == "image" || name == "image[]")
        edit.images.push_back(part.content);
      else if (name == "mask")
        edit.mask = part.content;
      else
        fields.emplace_back(name, part.content);
    }
    edit.fields = openai_form_fields(fields);
    return edit;
  }
  edit.fields = parse_json_object(req.body);
  auto bytes_of = [](const std::string& field, const nlohmann::json& value) {
    const auto bytes = value.is_string() ? base64_decode(value.get<std::string>()) : std::nullopt;
    if (!bytes) throw ApiError(400, field, "expected a base64-encoded PNG, JPEG or WebP image");
    return std::string(bytes->begin(), bytes->end());
  };
  if (const auto it = edit.fields.find("image"); it != edit.fields.end()) {
    if (it->is_array())
      for (size_t i = 0; i < it->size(); ++i)
        edit.images.push_back(bytes_of(fmt::format("image[{}]", i), (*it)[i]));
    else
      edit.images.push_back(bytes_of("image", *it));
  }
  if (const auto it = edit.fields.find("mask"); it != edit.fields.end() && !it->is_null())
    edit.mask = bytes_of("mask", *it);
  return edit;
}

// Runs a parsed request and answers as OpenAI's images API does.
void answer_images(ServerState& s, const JobSpec& spec, const httplib::Request& req,
                   httplib::Response& res) {
  const std::string format = output_format_name(spec.format);
  const JobStatus status = run_to_completion(s, spec, "model", ClientConnection(req));
  nlohmann::json data = nlohmann::json::array();
  for (const JobImage& image : status.images)
    data.push_back({{"b64_json", base64_encode(image.encoded)},
                    {"revised_prompt", spec.request.prompt},
                    {"seed", image.record.value("seed", nlohmann::json())}});
  send_json(res, 200, {{"created", unix_time()}, {"data", data}, {"output_format", format}});
}

}  // namespace

void add_openai_routes(ServerState& s) {
  s.http.Post("/v1/images/generations", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      answer_images(s,
                    parse_openai_generation(parse_json_object(req.body), s.options.limits,
                                            s.models.default_model()),
                    req, res);
    });
  });

  s.http.Post("/v1/images/edits", [&s](const httplib::Request& req, httplib::Response& res) {
    answer(res, [&] {
      answer_images(
          s, parse_openai_edit(edit_request(req), s.options.limits, s.models.default_model()), req,
          res);
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
