// The page at `/`, GET /health and GET /metrics.
#include "core/memory_usage.h"
#include "server/server_state.h"
#include "server/web_page.h"

namespace zflow::server {

void add_info_routes(ServerState& s) {
  s.http.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
                   "'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    res.set_content(std::string(web_page_html()), "text/html; charset=utf-8");
  });

  s.http.Get("/health", [&s](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"status", "ok"},
               {"models", s.models.entries().size()},
               {"queue_depth", s.queue.depth()},
               {"running", s.queue.running() != nullptr}});
  });

  s.http.Get("/metrics", [&s](const httplib::Request&, httplib::Response& res) {
    const Gauges g{.queue_depth = s.queue.depth(),
                   .jobs_running = s.queue.running_count(),
                   .models_loaded = s.models.loaded().size(),
                   .resident_bytes = current_rss_bytes()};
    res.set_content(s.metrics.render(g), "text/plain; version=0.0.4");
  });
}

}  // namespace zflow::server
