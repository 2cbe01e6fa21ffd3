#include "server/http_server.h"

#include <openssl/crypto.h>

#include "core/error.h"
#include "core/log.h"
#include "server/server_state.h"

namespace zflow::server {

struct ApiServer::State : ServerState {
  using ServerState::ServerState;
};

namespace {

// Constant-time, so the key cannot be guessed byte by byte from response times.
bool key_matches(const std::string& given, const std::string& key) {
  return given.size() == key.size() && CRYPTO_memcmp(given.data(), key.data(), key.size()) == 0;
}

}  // namespace

ApiServer::ApiServer(ServerOptions options, ModelRegistry& models)
    : state_(std::make_unique<State>(std::move(options), models)) {
  ServerState& s = *state_;
  auto& http = s.http;
  const size_t threads = s.options.http_threads;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http.set_payload_max_length(s.options.max_body_bytes);
  http.set_read_timeout(s.options.io_timeout_seconds, 0);
  http.set_write_timeout(s.options.io_timeout_seconds, 0);

  // The page itself and /health are public; everything else needs the key when one is set.
  http.set_pre_routing_handler([&s](const httplib::Request& req, httplib::Response& res) {
    if (s.options.api_key.empty() || req.path == "/" || req.path == "/health")
      return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) == 0 && key_matches(auth.substr(prefix.size()), s.options.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    res.set_header("WWW-Authenticate", "Bearer");
    send_error(res, 401, "a valid 'Authorization: Bearer <key>' header is required");
    return httplib::Server::HandlerResponse::Handled;
  });

  // httplib's own refusals (no route, body too large, bad request line) get a JSON body too.
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string message = res.status == 404
                                    ? "no such endpoint: " + req.method + " " + req.path
                                : res.status == 413 ? "request body too large"
                                                    : "bad request";
    send_error(res, res.status, message);
  });
  http.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          send_error(res, 500, e.what());
        } catch (...) {
          send_error(res, 500, "internal error");
        }
      });
  // Counted before the response goes out (the logger runs after), so a client that reads
  // /metrics next sees its own previous request.
  http.set_post_routing_handler([&s](const httplib::Request&, httplib::Response& res) {
    s.metrics.request_served(res.status);
  });
  http.set_logger([](const httplib::Request& req, const httplib::Response& res) {
    log::debug("[server] {} {} -> {}", req.method, req.path, res.status);
  });

  add_openai_routes(s);
  add_a1111_routes(s);
  add_job_routes(s);
  add_info_routes(s);
}

ApiServer::~ApiServer() {
  stop();
}

int ApiServer::bind() {
  ServerState& s = *state_;
  if (s.options.port == 0) {
    const int port = s.http.bind_to_any_port(s.options.host);
    if (port < 0) fail("[server] cannot bind {} to any port", s.options.host);
    return port;
  }
  if (!s.http.bind_to_port(s.options.host, s.options.port))
    fail("[server] cannot bind {}:{} (in use, or not an address of this machine?)", s.options.host,
         s.options.port);
  return s.options.port;
}

void ApiServer::serve() {
  state_->http.listen_after_bind();
}

void ApiServer::stop() {
  // Jobs first: synchronous handlers wait on them, and the HTTP pool joins its handlers.
  state_->queue.shutdown();
  state_->http.stop();
}

}  // namespace zflow::server
