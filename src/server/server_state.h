// What the route handlers share: options, models, the queue, metrics and the HTTP server, plus
// the small helpers every API uses to answer (JSON bodies, errors, waiting on a job).
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <functional>

#include "server/client_connection.h"
#include "server/http_server.h"
#include "server/job_queue.h"
#include "server/metrics.h"

namespace zflow::server {

struct ServerState {
  ServerState(ServerOptions opts, ModelRegistry& registry);

  ServerOptions options;
  ModelRegistry& models;
  Metrics metrics;
  JobQueue queue;
  httplib::Server http;
};

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// {"error": {"message", "type", "param", "code"}}: OpenAI's shape, used by every API here.
void send_error(httplib::Response& res, int status, const std::string& message,
                const std::string& param = "");

// Runs a handler body, turning ApiError, QueueFull (429) and engine errors into JSON errors.
void answer(httplib::Response& res, const std::function<void()>& body);

// Checks the job's model exists (404 naming `model_field` otherwise) and queues it.
std::shared_ptr<Job> submit(ServerState& s, JobSpec spec, const std::string& model_field);
// Queues a job and blocks until it ends (the synchronous APIs); a failed or cancelled job becomes
// an ApiError (422 refused by the model, 409 cancelled, 500 failed). The job is cancelled when
// `client` hangs up while it waits or runs.
JobStatus run_to_completion(ServerState& s, JobSpec spec, const std::string& model_field,
                            const ClientConnection& client);

// The queue's joiner: the jobs that may join a run starting with `first` (same model and LoRAs,
// requests the model can batch together).
std::function<bool(const Job&)> joiner_for(const Job& first, ModelRegistry& models);
// The queue's runner: loads the model, runs the jobs together with progress (each job's
// previews from its own first image) until `stop`, encodes each job's images. A job whose
// output, sized by its images, is larger than `limits` allow is refused by the model (422).
std::vector<std::vector<JobImage>> run_jobs(std::span<Job* const> jobs, std::stop_token stop,
                                            ModelRegistry& models, Metrics& metrics,
                                            const RequestLimits& limits);

void add_openai_routes(ServerState& s);
void add_a1111_routes(ServerState& s);
void add_job_routes(ServerState& s);
void add_info_routes(ServerState& s);  // /, /health, /metrics

}  // namespace zflow::server
