// `zflow serve`'s HTTP face: the OpenAI images API, the AUTOMATIC1111 API, zflow's native job API
// with server-sent progress events, health and Prometheus metrics, and the web page at `/`.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "server/api_request.h"
#include "server/model_registry.h"
#include "text/dynamic_prompt.h"
#include "text/prompt_styles.h"

namespace zflow::server {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless told otherwise
  int port = 7860;                 // 0: any free port (tests)
  std::string api_key;             // non-empty: every API call needs "Authorization: Bearer <key>"
  size_t queue_capacity = 32;      // waiting jobs before 429
  // Images one run may hold by joining waiting jobs that differ only in prompts, seed and image
  // count (job_queue.h); 1: every job runs alone.
  int max_joined_images = 1;
  size_t http_threads = 64;  // connections served at once (sync calls hold one each)
  size_t max_body_bytes = 64u << 20;
  int io_timeout_seconds = 30;  // a client silent this long while sending or reading is dropped
  RequestLimits limits;
  // Prompts read as Dynamic Prompts templates where a request does not say (the A1111 extension
  // installed), and the folder of their __name__ wildcard files.
  std::optional<PromptTemplates> prompt_templates;
  text::Wildcards wildcards;          // empty: none
  std::vector<text::PromptStyle> styles;  // A1111's prompt styles requests may name
};

class ApiServer {
 public:
  ApiServer(ServerOptions options, ModelRegistry& models);
  ~ApiServer();

  // Binds the socket; returns the port (the chosen one when options.port is 0). Throws Error when
  // the address cannot be bound.
  int bind();
  // Serves until stop(); call bind() first.
  void serve();
  // Stops serving: waiting and running jobs are cancelled, then connections close.
  void stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace zflow::server
